import { balance, type BalanceOptions, type BalanceStage, type TargetSpec } from '@relay/balance';
import { errorStatus, type RelayErrorCode } from '@relay/core';
import { maxTimerDelay, nearestName } from '@relay/core/transport';
import { z } from 'zod';
import { routeFeature, stageOrder } from './feature.js';

const positive = z.number().int().positive();
/** A delay a timer waits: node fires a longer one after 1 ms, so checks would run back to back. */
const delay = positive.max(maxTimerDelay, `expected at most ${maxTimerDelay} ms (about 24.8 days, node's timer limit)`);
const statuses = z.array(z.number().int().min(100).max(599));

const healthCheckSchema = z
  .object({
    // What node refuses in a request path (a space, a control character, above U+00FF) and '#', as balance() does.
    path: z
      .string()
      .regex(/^\//, 'expected a path starting with /')
      .regex(/^[^#]*$/, "expected no '#' (percent-encode it)")
      .regex(/^[\u0021-\u00ff]*$/, 'expected no space, control character or character above U+00FF (percent-encode them)'),
    interval: delay,
    timeout: delay,
    healthyThreshold: positive,
    unhealthyThreshold: positive,
    statuses: statuses.min(1, 'expected at least one status (no check could pass); leave it out for every 2xx and 3xx'),
    protocol: z.enum(['http1', 'http2']),
  })
  .partial({ interval: true, timeout: true, healthyThreshold: true, unhealthyThreshold: true, statuses: true, protocol: true })
  .strict();

const outlierSchema = z
  .object({
    consecutiveFailures: positive,
    baseEjectionTime: positive,
    maxEjectionTime: positive,
    maxEjectionPercent: z.number().int().min(0).max(100),
    statuses,
    errors: z.array(z.string().superRefine(checkErrorCode)),
  })
  .partial()
  .strict();

const circuitSchema = z
  .object({ maxRequests: positive, maxPending: z.number().int().nonnegative(), retryAfter: positive })
  .partial({ maxPending: true, retryAfter: true })
  .strict();

/**
 * `balance:` on a route: the options of `balance()` from `@relay/balance` but its targets, which
 * are the route's `upstream` list. Functions (`onStateChange`, `resolve`) need code.
 *
 * @example
 * balanceSchema.parse({ strategy: 'least-request', healthCheck: { path: '/health' } });
 */
export const balanceSchema = z
  .object({
    strategy: z.enum(['round-robin', 'least-request', 'hash']),
    hashKey: z.union([z.literal('client'), z.object({ header: z.string().min(1) }).strict(), z.object({ cookie: z.string().min(1) }).strict()]),
    healthCheck: healthCheckSchema,
    outlier: z.union([z.literal(false), outlierSchema]),
    circuit: circuitSchema,
  })
  .partial()
  .strict();

/**
 * The `balance` route key and a route's `upstream` list → one `balance()` stage over the route's
 * targets, after `retry()` (each retry goes to another target). A route with one upstream and no
 * `balance:` has no pool: its relay sends every attempt to that upstream, as before; but a lone
 * `{ dns }` target is a pool, which looks its name up.
 *
 * @example
 * // upstream: [http://10.0.0.1:8000, http://10.0.0.2:8000]
 * // balance: { healthCheck: { path: /health } }
 */
export const balanceFeature = routeFeature({
  key: 'balance',
  schema: balanceSchema.optional(),
  apply(value, parts, context) {
    // A `{ dns }` target is a pool even alone: its addresses are the pool's to follow.
    if (value === undefined && context.targets.length === 1 && !isDns(context.targets[0]!)) return;
    const { outlier, ...rest } = value ?? {};
    const options: BalanceOptions = { ...rest, targets: context.targets };
    if (outlier !== undefined) options.outlier = outlier === false ? false : { ...outlier, errors: outlier.errors as RelayErrorCode[] | undefined };
    // Built once per config load: a reload builds a new pool, and the old one stops with its relay.
    const pool = carryingOver(balance(options), context.keep('balance', (): LastPool => ({ pool: undefined, before: undefined })));
    parts.pool = pool;
    parts.stages.push({ order: stageOrder.balance, stage: pool });
  },
});

function isDns(target: TargetSpec): boolean {
  return typeof target === 'object' && 'dns' in target;
}

/**
 * The route's pool that started last: the one serving, whose verdicts the next config's pool takes;
 * and the one it replaces, until that one stops (or the new one stops without having served).
 */
interface LastPool {
  pool: BalanceStage | undefined;
  before: BalanceStage | undefined;
}

/**
 * `pool`, which takes the health and ejections the route's serving pool found (`adopt`), and the
 * addresses of the DNS names both list (kept if its own first lookup fails), as it starts: a reload must not send traffic to a target known to be down until the new checks find
 * it again (NGINX Plus keeps a server's verdict over a reload with `health_check persistent`). At start, not when built: a
 * config that is only checked, or refused, builds pools that never serve and must not hand on.
 */
function carryingOver(pool: BalanceStage, last: LastPool): BalanceStage {
  return {
    ...pool,
    start() {
      if (last.pool !== pool) {
        if (last.pool !== undefined) pool.adopt(last.pool.targets());
        last.before = last.pool;
        last.pool = pool;
      }
      return pool.start();
    },
    stop() {
      // A config whose startup failed stops its pools without having served: the pool it would have
      // replaced serves on, and is the one the next config's pool takes its verdicts from.
      if (last.pool === pool) last.pool = last.before;
      // Nothing refers to a stopped pool: a retired one is not kept alive across reloads.
      if (last.before === pool || last.pool === last.before) last.before = undefined;
      pool.stop();
    },
  };
}

/** A RelayError code, checked here so the error names its line; a misspelled one would never match. */
function checkErrorCode(code: string, context: z.RefinementCtx): void {
  if (Object.hasOwn(errorStatus, code)) return;
  const nearest = nearestName(code, Object.keys(errorStatus));
  context.addIssue({ code: z.ZodIssueCode.custom, message: `not a RelayError code${nearest === null ? '' : ` (did you mean ${nearest}?)`}` });
}
