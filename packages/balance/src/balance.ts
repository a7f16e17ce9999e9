import type { Handler, ProxyRequest, ProxyResponse, Stage } from '@relay/core';
import type { Readable } from 'node:stream';
import { waitWhileClientStays } from './bounded-wait.js';
import { compileHashKey } from './hash-key.js';
import type { Member, TargetState } from './member.js';
import { checkBalanceOptions, compileCircuit, compileHealth, compileOutlier, type BalanceOptions, type CircuitRules, type TargetSpec } from './options.js';
import { Pool } from './pool.js';
import { noTarget, overloaded } from './responses.js';
import { holdForSession } from './session-slot.js';
import { strategyPicks } from './strategies.js';

/** A `balance()` stage: put it in `stages`, and steer its pool at run time. */
export interface BalanceStage extends Stage {
  /** Replaces the targets; attempts in flight finish on the target they were given. */
  setTargets(targets: readonly TargetSpec[]): void;
  /** Every target and its state (in flight, pending, healthy, ejected). */
  targets(): TargetState[];
  /** Takes the health and ejection state of the targets with the same URL from another pool's `targets()` (the pool this one replaces). */
  adopt(states: readonly TargetState[]): void;
  /** Starts health checks and DNS lookups now rather than on the first request; resolves once every name was looked up. */
  start(): Promise<void>;
  /** Stops health checks and DNS lookups and closes their connections (call it beside `relay.shutdown()`). */
  stop(): void;
}

const bodyMember = Symbol('balance.member');
/** A wait that has no queue entry to take back. */
const noWithdrawal = (): void => {};
type HeldBody = Readable & { [bodyMember]?: Member };

/**
 * Spreads each attempt over several upstream targets: weighted round robin, least in-flight
 * (power of two choices) or consistent hashing; passive outlier ejection, optional active
 * health checks, per-target circuit breaking, DNS discovery. Put `retry()` outside it: each retry
 * is a new attempt, sent to another target.
 *
 * @example
 * const pool = balance({ targets: ['http://10.0.0.1:8000', { url: 'http://10.0.0.2:8000', weight: 2 }] });
 * createRelay({ targetBaseUrl: 'http://10.0.0.1:8000', stages: [retry({ maxRetries: 2 }), pool] });
 * pool.setTargets(['http://10.0.0.2:8000', 'http://10.0.0.3:8000']);
 */
export function balance(options: BalanceOptions): BalanceStage {
  checkBalanceOptions(options);
  const strategy = options.strategy ?? 'round-robin';
  if (options.hashKey !== undefined && strategy !== 'hash') throw new TypeError("balance: hashKey needs strategy: 'hash'");
  const circuit = compileCircuit(options.circuit);
  const pool = new Pool(
    {
      pick: strategyPicks[strategy],
      movable: strategy !== 'hash',
      keyOf: strategy === 'hash' ? compileHashKey(options.hashKey) : null,
      outlier: compileOutlier(options.outlier),
      health: compileHealth(options.healthCheck),
      circuit,
      onStateChange: options.onStateChange ?? null,
      resolve: options.resolve ?? null,
    },
    options.targets,
  );
  return {
    name: 'balance',
    wrap(next, context) {
      if (pool.logger !== context.logger) pool.logger = context.logger;
      // The health checks of https: targets connect as the relay's attempts do (its CA, servername, client certificate).
      if (context.tls !== undefined) pool.useTls(context.tls);
      return balanceHandler(pool, circuit, context.timeouts.pool, next);
    },
    setTargets: (targets) => pool.setTargets(targets),
    targets: () => pool.targets(),
    adopt: (states) => pool.adopt(states),
    start: () => pool.start(),
    stop: () => pool.stop(),
  };
}

/** `maxWait`: how long an attempt may wait for a circuit slot or the first DNS lookups, the relay's `timeout.pool` (0: no bound, as there). */
function balanceHandler(pool: Pool, circuit: CircuitRules | null, maxWait: number, next: Handler): Handler {
  async function attempt(member: Member, request: ProxyRequest): Promise<ProxyResponse> {
    let response: ProxyResponse;
    // A client already gone: the attempt is not sent live whatever ends it.
    const clientStayed = !request.client.aborted;
    try {
      // The attempt's own value (retry() makes one per attempt): choosing its target in place spares
      // a spread copy of the request per attempt, and outer stages see where it went.
      request.target = member.target;
      response = await next(request);
    } catch (error) {
      release(member);
      pool.recordError(member, error, { sentLive: clientStayed && !cutBeforeSent(request) });
      throw error;
    }
    pool.recordStatus(member, response.status);
    // A WebSocket session is load on its target until it closes, not only its handshake.
    if (response.upgrade !== undefined) holdForSession(response, response.upgrade, request.client, () => release(member));
    else holdUntilSent(response.body as HeldBody | null, member);
    response.target = member.target;
    return response;
  }

  function release(member: Member): void {
    member.inFlight--;
    if (circuit === null || member.waiting.length === 0 || member.inFlight >= circuit.maxRequests) return;
    // The slot passes straight to the oldest waiting attempt.
    member.inFlight++;
    member.waiting.shift()!();
  }

  function releaseBody(this: HeldBody): void {
    const member = this[bodyMember];
    if (member !== undefined) release(member);
  }

  /** An attempt counts as in flight until its response body is sent or dropped. */
  function holdUntilSent(body: HeldBody | null, member: Member): void {
    if (body === null || body.destroyed) {
      release(member);
      return;
    }
    body[bodyMember] = member;
    body.once('close', releaseBody);
  }

  /**
   * Waits for a slot of a full target, at most the relay's `timeout.pool`: the same wait for upstream
   * capacity that a full connection pool bounds. A wait that runs out gets the circuit's 503 with
   * `Retry-After`, as an attempt past `maxPending` does (Envoy answers a pending-queue overflow 503):
   * the target stayed at its limit, and `retry()` tries another target after `Retry-After`.
   */
  async function waitForSlot(member: Member, request: ProxyRequest, rules: CircuitRules): Promise<ProxyResponse> {
    const served = await waitWhileClientStays(request, {
      maxWait,
      waitingFor: 'a free upstream slot',
      enter: (granted) => {
        // The slot passes straight to a queued attempt (`release`), which leaves the queue as it does.
        member.waiting.push(granted);
        return () => {
          const index = member.waiting.indexOf(granted);
          if (index !== -1) member.waiting.splice(index, 1);
        };
      },
    });
    return served ? attempt(member, request) : refuse(member, rules);
  }

  /**
   * The first request to a pool of DNS names, which has no address before their first lookups end:
   * it waits for them at most the relay's `timeout.pool` (each lookup is bounded too, by
   * `DnsWatch`), and no longer than its client stays. A lookup still running then is answered as a
   * name without addresses is: 503 ERR_NO_TARGET with `Retry-After`.
   */
  async function afterFirstLookups(lookups: Promise<void>, request: ProxyRequest): Promise<ProxyResponse> {
    const looked = await waitWhileClientStays(request, {
      maxWait,
      waitingFor: 'the first DNS lookup of its targets',
      enter: (done) => {
        void lookups.then(done);
        return noWithdrawal;
      },
    });
    if (looked) return balanceStage(request);
    pool.logger.warn({ ms: maxWait }, 'balance: the first DNS lookup of the targets is still running: 503');
    return noTarget();
  }

  /** 503 for a full target; logged at most once a second per target, a flood must not flood the log too. */
  function refuse(member: Member, rules: CircuitRules): ProxyResponse {
    const now = Date.now();
    if (now - member.lastRefusalLog >= 1000) {
      member.lastRefusalLog = now;
      pool.logger.warn({ target: member.url, inFlight: member.inFlight, pending: member.waiting.length }, 'balance: circuit open: 503');
    }
    return overloaded(rules.retryAfter);
  }

  function balanceStage(request: ProxyRequest): Promise<ProxyResponse> {
    // An attempt held in a stage before this one past its bound's cut (a retry deadline): the run is
    // over, and the attempt is never sent, nor given a target, nor counted.
    const cut = request.bound?.reason;
    if (cut != null) return Promise.reject(cut);
    if (!pool.running) {
      const lookups = pool.start();
      // A pool of DNS names has nobody to send to before the first lookups end.
      if (pool.members.length === 0) return afterFirstLookups(lookups, request);
    }
    const member = pool.pick(request);
    if (member === null) return Promise.resolve(noTarget());
    if (circuit !== null && member.inFlight >= circuit.maxRequests) {
      if (member.waiting.length >= circuit.maxPending) return Promise.resolve(refuse(member, circuit));
      return waitForSlot(member, request, circuit);
    }
    member.inFlight++;
    return attempt(member, request);
  }

  return balanceStage;
}

/**
 * Whether the attempt's bound (a retry deadline) was cut before the attempt reached its transport:
 * it was never sent, and its `ERR_DEADLINE` says nothing about its target. A cut that stopped it in
 * flight is the target's timeout.
 */
function cutBeforeSent(request: ProxyRequest): boolean {
  const bound = request.bound;
  return bound !== undefined && bound.reason !== null && !bound.cutInFlight;
}
