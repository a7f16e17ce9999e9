import type { Gateway } from './gateway.js';

/** One upstream target as the status page shows it. */
export interface TargetStatus {
  url: string;
  /** `healthy` when the last attempt got an answer other than 502/503/504, `unhealthy` when it failed, `unknown` before any. */
  health: 'unknown' | 'healthy' | 'unhealthy';
  lastStatus: number | null;
  lastError: string | null;
  /** Milliseconds since the last attempt, `null` before any. */
  lastSeenAgo: number | null;
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

/** The data of the status page (`<path>.json`). */
export interface StatusSnapshot {
  pid: number;
  uptimeSeconds: number;
  generation: number;
  reloads: { succeeded: number; failed: number };
  inFlight: number;
  websocketSessions: number;
  routes: RouteStatus[];
}

/**
 * Reads the gateway's counters: in-flight requests and sessions include the relays of older
 * generations still finishing their work after a reload.
 *
 * @example
 * const snapshot = statusSnapshot(gateway);
 */
export function statusSnapshot(gateway: Gateway): StatusSnapshot {
  const now = Date.now();
  const generations = [gateway.current, ...gateway.retiring];
  const routes = gateway.current.routes.map((route): RouteStatus => {
    const lastMinute = route.stats.lastMinute();
    let inFlight = 0;
    for (const generation of generations) {
      for (const other of generation.routes) if (other.label === route.label) inFlight += other.relay.inFlight;
    }
    const health = route.health;
    return {
      name: route.label,
      match: {
        path: route.matcher.path,
        host: route.route.match.host === undefined ? null : [route.route.match.host].flat(),
        methods: route.route.match.methods ?? null,
      },
      targets: [
        {
          url: route.upstream,
          health: health.state,
          lastStatus: health.lastStatus === 0 ? null : health.lastStatus,
          lastError: health.lastError === '' ? null : health.lastError,
          lastSeenAgo: health.lastSeen === 0 ? null : now - health.lastSeen,
        },
      ],
      requestsLastMinute: lastMinute.requests,
      errorsLastMinute: lastMinute.errors,
      inFlight,
      websocketSessions: route.stats.websocketSessions,
    };
  });
  return {
    pid: process.pid,
    uptimeSeconds: Math.round((now - gateway.startedAt) / 1000),
    generation: gateway.current.number,
    reloads: { ...gateway.reloads },
    inFlight: generations.reduce((sum, generation) => sum + generation.inFlight, 0),
    websocketSessions: generations.reduce((sum, generation) => sum + generation.counters.websocketSessions, 0),
    routes,
  };
}
