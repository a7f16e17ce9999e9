import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { BalanceStage, TargetSpec } from '@relay/balance';
import { createRelay, silentLogger, type Logger, type Relay, type Stage } from '@relay/core';
import type { LimitStore } from '@relay/limits';
import { ConfigError, issueAt, type ConfigIssue } from './config-error.js';
import type { FeatureContext, RouteParts } from './feature.js';
import { routeFeatures } from './features.js';
import type { LoadedConfig } from './load-config.js';
import { compileMatcher, matchersByHostKind, type RouteMatcher } from './matcher.js';
import type { RedisConnection } from './redis-connection.js';
import type { ResolvedConfig, ResolvedRoute } from './schema.js';
import { GenerationCounters, RouteStats, TargetHealth } from './stats.js';
import { failedAttemptCode, routeStatsStage, type RouteTracking } from './tracking-stages.js';

/**
 * Where a rate limit counts, by the limit's id (route label and the feature's key, so one id per
 * limit of one route and options): `createGateway`'s `limitStore` option.
 */
export type LimitStoreOf = (limit: string) => LimitStore;

/** One route of a generation: how it matches, its relay and its counters. */
export interface LiveRoute {
  readonly label: string;
  readonly index: number;
  readonly route: ResolvedRoute;
  /** The upstream, or the first target of a route that lists several. */
  readonly upstream: string;
  /** The route's target pool, when it lists several upstreams or has `balance:`. */
  readonly pool: BalanceStage | undefined;
  readonly matcher: RouteMatcher;
  readonly relay: Relay;
  readonly stats: RouteStats;
  readonly health: TargetHealth;
}

/** Counters that outlive a generation: a route's stats and a target's health carry over a reload. */
export interface SharedStats {
  readonly routes: Map<string, RouteStats>;
  /** By upstream URL; a pooled route's by `pool\u0000label`, its own (see `buildRoute`). */
  readonly targets: Map<string, TargetHealth>;
  /** What features keep across reloads (`FeatureContext.keep`), by route label and the feature's key. */
  readonly kept: Map<string, object>;
}

/**
 * Empty shared state, for a gateway's first generation.
 *
 * @example
 * new Generation({ number: 1, loaded, shared: newSharedStats(), logger });
 */
export function newSharedStats(): SharedStats {
  return { routes: new Map(), targets: new Map(), kept: new Map() };
}

/**
 * Builds a config's relays without starting them, which runs every stage factory's own checks (a
 * pool's `hashKey` without `strategy: hash`, a CA file): what `relay check` and the primary of
 * `--workers` do before they accept a config. Throws a `ConfigError`; the routes built are dropped.
 * A `redis` block is checked by the schema and not connected to (its limits get memory stores here).
 *
 * @example
 * const { routes } = checkRoutes(await loadConfig('gateway.yaml'));
 */
export function checkRoutes(loaded: LoadedConfig, logger: Logger = silentLogger): Generation {
  return new Generation({ number: 0, loaded, shared: newSharedStats(), logger });
}

/**
 * The relays built from one version of the config; building them runs every stage factory's
 * checks and throws a `ConfigError` naming the route key that failed, and its line in the file.
 *
 * @example
 * const generation = new Generation({ number: 2, loaded, shared, logger });
 * await generation.startup();
 */
export class Generation {
  readonly counters = new GenerationCounters();
  readonly routes: LiveRoute[];
  /**
   * Routes in match order: most specific host, then longest path, then with methods, then file
   * order. A route listing hosts of several kinds is here once per kind, with that kind's matcher.
   */
  readonly ordered: LiveRoute[];
  /** Whether any route matches on the host: when none does, the Host header is never parsed. */
  readonly usesHosts: boolean;
  /** The built-in endpoints' paths, worked out once: `null` when off. */
  readonly endpoints: Endpoints;
  /** The keys of `shared.kept` this generation's routes use: the gateway drops the others once it serves. */
  readonly keptKeys = new Set<string>();

  readonly number: number;
  readonly loaded: LoadedConfig;
  /** The client of the config's `redis` block, which its rate limits count in; the gateway owns and closes it. */
  readonly redis: RedisConnection | undefined;

  constructor(options: { number: number; loaded: LoadedConfig; shared: SharedStats; logger: Logger; limitStore?: LimitStoreOf; redis?: RedisConnection }) {
    const { loaded, shared, logger, limitStore, redis } = options;
    this.number = options.number;
    this.loaded = loaded;
    this.redis = redis;
    const issues: ConfigIssue[] = [];
    const labels = new Set<string>();
    this.routes = [];
    loaded.config.routes.forEach((route, index) => {
      try {
        this.routes.push(buildRoute(route, { index, loaded, counters: this.counters, shared, labels, logger, keptKeys: this.keptKeys, limitStore, redis }));
      } catch (error) {
        if (error instanceof RouteBuildError) issues.push(issueAt(error.path, error.message, loaded.lineOf));
        else throw error;
      }
    });
    if (issues.length > 0) throw new ConfigError(loaded.shown, issues);
    this.ordered = this.routes.flatMap(byHostKind).sort(byPrecedence);
    this.usesHosts = this.ordered.some((route) => route.matcher.hosts !== null);
    this.endpoints = endpointsOf(loaded.config);
  }

  /** Requests in flight on this generation's relays. */
  get inFlight(): number {
    let total = 0;
    for (const route of this.routes) total += route.relay.inFlight;
    return total;
  }

  /**
   * Starts the relays, and the pools' health checks, before the generation takes traffic. When one
   * route fails to start, the others may have started already: every route is shut down again
   * before the error is thrown, so a refused config leaves no health check or DNS lookup running.
   */
  async startup(): Promise<void> {
    const results = await Promise.allSettled(this.routes.map(startRoute));
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed === undefined) return;
    await this.shutdown(0);
    throw failed.reason;
  }

  /** Shuts the relays down, then stops their pools' health checks: no attempt of theirs is left to pick a target. */
  async shutdown(timeout: number): Promise<void> {
    await Promise.all(this.routes.map((route) => route.relay.shutdown({ timeout }).finally(() => route.pool?.stop())));
  }
}

/** Starts one route's relay and pool; a start that throws at once is a rejection too, after the others began. */
async function startRoute(route: LiveRoute): Promise<void> {
  await Promise.all([route.relay.startup(), route.pool?.start()]);
}

/** One built-in endpoint that is on: its path and the listeners it answers on (every one when unset). */
export interface Endpoint {
  readonly path: string;
  readonly listeners?: string[];
}

/** `/healthz`, `/metrics` and the status page (HTML and `.json`) of one config. */
export interface Endpoints {
  readonly health: Endpoint | null;
  readonly metrics: Endpoint | null;
  readonly status: Endpoint | null;
  readonly statusJson: string;
}

function endpointsOf(config: ResolvedConfig): Endpoints {
  const on = (endpoint: false | Endpoint) => (endpoint === false ? null : endpoint);
  const status = on(config.status);
  return { health: on(config.health), metrics: on(config.metrics), status, statusJson: status === null ? '' : `${status.path}.json` };
}

/** A route key its relay or stage factory refused; its document path finds the line in the file. */
class RouteBuildError extends Error {
  constructor(
    readonly path: ReadonlyArray<string | number>,
    message: string,
  ) {
    super(message);
  }
}

/** What building one route needs from its generation. */
interface RouteBuild {
  readonly index: number;
  readonly loaded: LoadedConfig;
  readonly counters: GenerationCounters;
  readonly shared: SharedStats;
  readonly labels: Set<string>;
  readonly logger: Logger;
  readonly keptKeys: Set<string>;
  readonly limitStore: LimitStoreOf | undefined;
  readonly redis: RedisConnection | undefined;
}

function buildRoute(route: ResolvedRoute, build: RouteBuild): LiveRoute {
  const at = ['routes', build.index];
  const { upstream, targets } = upstreamOf(route);
  const label = uniqueLabel(route, build.index, build.labels);
  const stats = reuse(build.shared.routes, label, () => new RouteStats(label));
  const limitStore = build.limitStore === undefined ? undefined : limitStoreFor(build.limitStore, label);
  const { redis: redisSettings } = build.loaded.config;
  const redisStore = build.redis === undefined || redisSettings === undefined ? undefined : build.redis.storeFor(redisSettings, label);
  const parts = featureParts(route, at, { configDir: build.loaded.dir, routeLabel: label, targets, keep: keeper(build, label), limitStore, redisStore });
  // A target's health is shared by the routes that send to it, but a pool's attempts go to any of its
  // targets: recorded under the first one's URL they would mark another route's upstream down. A
  // pooled route's own record (its last attempt, for relay_gateway_target_up) is kept apart; the
  // status page shows the pool's verdicts instead.
  const healthKey = parts.pool === undefined ? upstream.url : `pool\u0000${label}`;
  const health = reuse(build.shared.targets, healthKey, () => new TargetHealth(upstream.url));
  const { config, dir } = build.loaded;
  const relay = guard([...at, 'upstream'], () =>
    createRelay({
      targetBaseUrl: upstream.url,
      upstreamPrefix: route.upstreamPrefix,
      preserveHost: route.preserveHost,
      timeout: attemptTimeouts(config, route),
      shutdownTimeout: config.timeouts.shutdown ?? 10_000,
      trustProxy: config.trustProxy,
      stages: trackedStages(parts, { stats, counters: build.counters, health }),
      websocket: parts.websocket,
      tls: upstream.tls === undefined ? undefined : readUpstreamTls(upstream.tls, dir, [...at, 'upstream', 'tls', 'ca']),
      logger: routeLogger(build.logger, label, health),
    }),
  );
  return { label, index: build.index, route, upstream: upstream.url, pool: parts.pool, matcher: compileMatcher(route), relay, stats, health };
}

/**
 * The relay's `targetBaseUrl` and `tls`, and the targets a pool would balance: a single upstream
 * is its own one target (its path stays in `targetBaseUrl`); a list's first target stands for the
 * others in `targetBaseUrl`, which `balance()` replaces per attempt but for its path.
 */
function upstreamOf(route: ResolvedRoute): { upstream: { url: string; tls: UpstreamTls | undefined }; targets: TargetSpec[] } {
  if (typeof route.upstream === 'string') return { upstream: { url: route.upstream, tls: undefined }, targets: [{ url: new URL(route.upstream).origin }] };
  if (!Array.isArray(route.upstream)) return { upstream: { tls: undefined, ...route.upstream }, targets: [{ url: new URL(route.upstream.url).origin }] };
  const entries = route.upstream.map((target) => (typeof target === 'string' ? { url: target } : target));
  // The schema checked that every target giving a tls gives the same one, and that each has url or dns.
  const first = entries[0]!;
  return { upstream: { url: first.url ?? first.dns!, tls: entries.find((entry) => entry.tls !== undefined)?.tls }, targets: entries.map(poolSpec) };
}

/** One listed target as `balance()` takes it: `{ url, weight }`, or `{ dns, interval, weight }` (a name the pool looks up). */
function poolSpec(entry: { url?: string; dns?: string; interval?: number; weight?: number }): TargetSpec {
  const weight = entry.weight === undefined ? {} : { weight: entry.weight };
  if (entry.dns === undefined) return { url: entry.url!, ...weight };
  return { dns: entry.dns, ...(entry.interval === undefined ? {} : { interval: entry.interval }), ...weight };
}

type UpstreamTls = { ca?: string; rejectUnauthorized?: boolean; servername?: string };

/** `FeatureContext.keep` for one route: its values in `shared.kept` under the route's label. */
function keeper(build: RouteBuild, label: string): FeatureContext['keep'] {
  return <T extends object>(key: string, create: () => T): T => {
    const full = `${label}\u0000${key}`;
    build.keptKeys.add(full);
    // The same full key always comes from the same feature's code with the same key: the same type.
    return reuse(build.shared.kept, full, create) as T;
  };
}

/** `FeatureContext.limitStore` for one route: ids under the route's label, as `keep` keys are. */
function limitStoreFor(limitStore: LimitStoreOf, label: string): (key: string) => LimitStore {
  return (key) => limitStore(`${label}\u0000${key}`);
}

/** Counters kept across reloads: the one already there for this key, or a new one. */
function reuse<T>(map: Map<string, T>, key: string, create: () => T): T {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = create()));
  return value;
}

/** Runs every feature of a route; a factory that refuses its options is an issue at that key. */
function featureParts(route: ResolvedRoute, at: ReadonlyArray<string | number>, context: FeatureContext): RouteParts {
  const parts: RouteParts = { stages: [], websocket: undefined, pool: undefined };
  for (const feature of routeFeatures) {
    try {
      feature.apply(route[feature.key] as never, parts, context);
    } catch (error) {
      throw new RouteBuildError([...at, feature.key], (error as Error).message);
    }
  }
  return parts;
}

/** The feature stages in stage order, inside the gateway's counting stage (outermost). */
function trackedStages(parts: RouteParts, tracking: RouteTracking): Stage[] {
  const ordered = [...parts.stages].sort((a, b) => a.order - b.order);
  return [routeStatsStage(tracking), ...ordered.map((entry) => entry.stage)];
}

function attemptTimeouts(config: ResolvedConfig, route: ResolvedRoute) {
  const { connect, read, write, pool } = config.timeouts;
  const defaults = Object.fromEntries(Object.entries({ connect, read, write, pool }).filter(([, value]) => value !== undefined));
  return { ...defaults, ...route.timeout };
}

function readUpstreamTls(tls: UpstreamTls, dir: string, at: ReadonlyArray<string | number>) {
  const { ca, ...rest } = tls;
  if (ca === undefined) return rest;
  return { ...rest, ca: guard(at, () => readFileSync(resolve(dir, ca))) };
}

function uniqueLabel(route: ResolvedRoute, index: number, labels: Set<string>): string {
  const hosts = route.match.host === undefined ? '' : [route.match.host].flat().join(',');
  let label = route.name ?? `${hosts}${route.match.path}${route.match.methods ? ` ${route.match.methods.join(',')}` : ''}`;
  if (labels.has(label)) label = `${label} (routes[${index}])`;
  labels.add(label);
  return label;
}

function guard<T>(path: ReadonlyArray<string | number>, build: () => T): T {
  try {
    return build();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new RouteBuildError(path, message);
  }
}

/** The relay's logger: lines carry the route; a failed upstream attempt also marks the target unhealthy. */
function routeLogger(logger: Logger, route: string, health: TargetHealth): Logger {
  return {
    debug: (fields, message) => logger.debug({ route, ...fields }, message),
    info: (fields, message) => logger.info({ route, ...fields }, message),
    warn(fields, message) {
      const code = failedAttemptCode(fields);
      if (code !== null) health.failed(code, Date.now());
      logger.warn({ route, ...fields }, message);
    },
    error: (fields, message) => logger.error({ route, ...fields }, message),
  };
}

/** The route once per kind of host it lists, each with its own matcher (the same route when it lists one kind). */
function byHostKind(route: LiveRoute): LiveRoute[] {
  const matchers = matchersByHostKind(route.route);
  return matchers.length === 1 ? [route] : matchers.map((matcher) => ({ ...route, matcher }));
}

function byPrecedence(a: LiveRoute, b: LiveRoute): number {
  return (
    b.matcher.hostRank - a.matcher.hostRank ||
    b.matcher.path.length - a.matcher.path.length ||
    Number(b.matcher.methods !== null) - Number(a.matcher.methods !== null) ||
    a.index - b.index
  );
}
