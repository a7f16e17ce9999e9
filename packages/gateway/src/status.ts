import type { Generation, LiveRoute } from './generation.js';

/** One upstream target as the status page shows it. */
export interface TargetStatus {
  url: string;
  /**
   * `healthy` when the last attempt got an answer other than 502/503/504, `unhealthy` when it failed, `unknown` before any.
   * A target of a pool (`balance`) has the pool's verdict: `unhealthy` while its health checks fail or it is ejected.
   */
  health: 'unknown' | 'healthy' | 'unhealthy';
  lastStatus: number | null;
  lastError: string | null;
  /** Milliseconds since the last attempt, `null` before any (and for a pool's targets, whose pool keeps no such time). */
  lastSeenAgo: number | null;
  /** A pool's target only: ejected by the outlier detection, and its attempts in progress. */
  ejected?: boolean;
  inFlight?: number;
  /** An address of a pool's `{ dns }` target: the target it was resolved from (`http://app.internal:8000`). */
  dns?: string;
}

/** One route as the status page shows it. */
export interface RouteStatus {
  name: string;
  match: { path: string; host: string[] | null; methods: string[] | null };
  targets: TargetStatus[];
  requestsLastMinute: number;
  errorsLastMinute: number;
  inFlight: number;
  websocketSessions: number;
}

/** One worker process of the gateway, as the status page lists it. */
export interface WorkerStatus {
  pid: number;
  generation: number;
  inFlight: number;
  websocketSessions: number;
  /** Requests over every route in the last minute. */
  requestsLastMinute: number;
}

/** The data of the status page (`<path>.json`): with `--workers N`, of every worker together. */
export interface StatusSnapshot {
  /** The process that answered. */
  pid: number;
  uptimeSeconds: number;
  generation: number;
  reloads: { succeeded: number; failed: number };
  inFlight: number;
  websocketSessions: number;
  routes: RouteStatus[];
  /** Every worker (one entry without `--workers`). */
  workers: WorkerStatus[];
  /** True when some worker did not answer in time: the figures are of the others. */
  partial: boolean;
}

/** What a snapshot is taken of: a gateway's generations and counters (no import of the gateway itself). */
export interface StatusSource {
  readonly current: Generation;
  readonly retiring: Iterable<Generation>;
  readonly startedAt: number;
  readonly reloads: { succeeded: number; failed: number };
}

/** The route's one upstream: the outcome of its last attempt. */
function targetStatus(route: LiveRoute, now: number): TargetStatus {
  const health = route.health;
  return {
    url: route.upstream,
    health: health.state,
    lastStatus: health.lastStatus === 0 ? null : health.lastStatus,
    lastError: health.lastError === '' ? null : health.lastError,
    lastSeenAgo: health.lastSeen === 0 ? null : now - health.lastSeen,
  };
}

/** A pool's targets as its pool sees them: in (healthy and not ejected) or out. */
function poolStatus(pool: NonNullable<LiveRoute['pool']>, now: number): TargetStatus[] {
  return pool.targets().map((target) => {
    const ejected = target.ejectedUntil > now;
    return {
      url: target.url,
      health: target.healthy && !ejected ? 'healthy' : 'unhealthy',
      lastStatus: null,
      lastError: null,
      lastSeenAgo: null,
      ejected,
      inFlight: target.inFlight,
      ...(target.dns === undefined ? {} : { dns: target.dns }),
    };
  });
}

/**
 * Reads the gateway's counters: in-flight requests and sessions include the relays of older
 * generations still finishing their work after a reload.
 *
 * @example
 * const snapshot = statusSnapshot(gateway);
 */
export function statusSnapshot(gateway: StatusSource): StatusSnapshot {
  const now = Date.now();
  const generations = [gateway.current, ...gateway.retiring];
  const routes = gateway.current.routes.map((route): RouteStatus => {
    const lastMinute = route.stats.lastMinute();
    let inFlight = 0;
    for (const generation of generations) {
      for (const other of generation.routes) if (other.label === route.label) inFlight += other.relay.inFlight;
    }
    return {
      name: route.label,
      match: {
        path: route.matcher.path,
        host: route.route.match.host === undefined ? null : [route.route.match.host].flat(),
        methods: route.route.match.methods ?? null,
      },
      targets: route.pool === undefined ? [targetStatus(route, now)] : poolStatus(route.pool, now),
      requestsLastMinute: lastMinute.requests,
      errorsLastMinute: lastMinute.errors,
      inFlight,
      websocketSessions: route.stats.websocketSessions,
    };
  });
  const inFlight = generations.reduce((sum, generation) => sum + generation.inFlight, 0);
  const websocketSessions = generations.reduce((sum, generation) => sum + generation.counters.websocketSessions, 0);
  const requestsLastMinute = routes.reduce((sum, route) => sum + route.requestsLastMinute, 0);
  return {
    pid: process.pid,
    uptimeSeconds: Math.round((now - gateway.startedAt) / 1000),
    generation: gateway.current.number,
    reloads: { ...gateway.reloads },
    inFlight,
    websocketSessions,
    routes,
    workers: [{ pid: process.pid, generation: gateway.current.number, inFlight, websocketSessions, requestsLastMinute }],
    partial: false,
  };
}
