import type { BalanceStage, TargetSpec } from '@relay/balance';
import type { Stage, UpgradeTransport } from '@relay/core';
import type { LimitStore } from '@relay/limits';
import type { z } from 'zod';

/** What a route's config keys add to its relay: stages (placed by `order`) and the WebSocket transport. */
export interface RouteParts {
  readonly stages: Array<{ order: number; stage: Stage }>;
  websocket: UpgradeTransport | undefined;
  /** The route's target pool (`balance`): the gateway starts it with the route, stops it when the route retires, and shows its targets. */
  pool: BalanceStage | undefined;
}

/** What a feature may read while it builds: the folder of the config file, for relative file paths, and the route's label. */
export interface FeatureContext {
  readonly configDir: string;
  /** The route's label in logs, metrics and the status page: its `name`, else its match rule. */
  readonly routeLabel: string;
  /** The route's upstream origins (or DNS names, `{ dns }`) with their weights: one, unless `upstream` lists several. */
  readonly targets: readonly TargetSpec[];
  /**
   * State that outlives a reload (a rate limit's buckets): the value kept under `key` for this
   * route by the previous config, else `create()`. Put every option the state depends on in `key`,
   * so a changed option gets fresh state. Values no route of the new config asked for are dropped.
   */
  keep<T extends object>(key: string, create: () => T): T;
  /**
   * Where a rate limit of this route counts, by a key as for `keep` (the limit and its options):
   * set when the gateway shares its limits (the primary of `--workers N`, or a store the
   * application gave `createGateway`); undefined for a memory store in this process.
   */
  readonly limitStore: ((key: string) => LimitStore) | undefined;
  /**
   * The route's buckets in the config's `redis` (keys under its prefix and the route's label; a
   * limit adds its name): set when the config has a `redis` block and the gateway serves it.
   */
  readonly redisStore: LimitStore | undefined;
}

/**
 * One route key of the config (`headers:`, `retry:` …) and how it becomes part of the relay: its
 * schema, and `apply`, which calls the stage package's factory with the validated value. Adding a
 * stage package to the gateway is one such file plus its entry in `features.ts`.
 */
export interface RouteFeature<Key extends string, Schema extends z.ZodTypeAny> {
  /** The key under a route, e.g. `retry`. */
  readonly key: Key;
  /** The value's schema; `.optional()` (or `.default(…)`) when the key may be left out. */
  readonly schema: Schema;
  /** Adds the feature's stage (or transport) to the route's relay; a factory's TypeError becomes a config error at this key. */
  apply(value: z.output<Schema>, parts: RouteParts, context: FeatureContext): void;
}

/**
 * Declares a route feature with its types inferred.
 *
 * @example
 * export const retryFeature = routeFeature({
 *   key: 'retry',
 *   schema: retrySchema.optional(),
 *   apply(value, parts) { if (value) parts.stages.push({ order: stageOrder.retry, stage: retry(value) }); },
 * });
 */
export function routeFeature<Key extends string, Schema extends z.ZodTypeAny>(
  spec: RouteFeature<Key, Schema>,
): RouteFeature<Key, Schema> {
  return spec;
}

/**
 * Where each stage goes in a route's pipeline, outermost first (docs/stages.md explains why):
 * the gateway's own request counting outside everything, refusals and logs before rewriting,
 * response rewriting outside the retry loop, per-attempt work inside it. (Target health needs no
 * slot: failed attempts reach it from the transport's log line.)
 * `balance` is innermost but for the per-attempt work that wants to know the target it chose.
 *
 * @example
 * parts.stages.push({ order: stageOrder.retry, stage: retry(options) });
 */
export const stageOrder = Object.freeze({
  routeStats: 0,
  requestId: 5,
  accessLog: 10,
  // Outside `compress`, as the access log is: the response bytes it counts are the ones the client got.
  metrics: 12,
  compress: 15,
  tracing: 20,
  rateLimit: 40,
  bodyLimit: 50,
  cookies: 60,
  rewriteLocation: 65,
  retry: 70,
  balance: 80,
  observeAttempt: 85,
  headers: 90,
});
