import { toRelayError, type Handler, type ProxyRequest, type ProxyResponse, type Stage, type UpgradeHandoff } from '@relay/core';
import type { Duplex } from 'node:stream';
import type { GenerationCounters, RouteStats, TargetHealth } from './stats.js';

/** What a route's counting stage writes to: built once per route, shared by all its requests. */
export interface RouteTracking {
  readonly stats: RouteStats;
  readonly counters: GenerationCounters;
  readonly health: TargetHealth;
}

/**
 * The gateway's own outermost stage: counts each request of a route (an error when it ends in a
 * 5xx or fails), records the answer in the target's health, and counts each WebSocket session it
 * opens, for the status page, `/metrics` and reloads. Per request it adds one `then` with two
 * handlers bound when the route is built, one `Date.now()` and a few counter writes: no closure,
 * no object, no lookup. Failed attempts reach the target's health from the transport's log line
 * (see `failedAttemptCode`), so retries inside count too.
 *
 * @example
 * stages.unshift(routeStatsStage({ stats, counters, health }));
 */
export function routeStatsStage(tracking: RouteTracking): Stage {
  const { stats, counters, health } = tracking;
  function answered(response: ProxyResponse): ProxyResponse {
    const now = Date.now();
    const status = response.status;
    stats.record(status >= 500, now);
    health.answered(status, now);
    return status !== 101 || response.upgrade === undefined ? response : trackSession(response, stats, counters);
  }
  function failed(error: unknown): never {
    if (toRelayError(error).code !== 'ERR_CLIENT_ABORTED') stats.record(true, Date.now());
    throw error;
  }
  return {
    name: 'gateway-route-stats',
    wrap: (next: Handler) =>
      function routeStats(request: ProxyRequest): Promise<ProxyResponse> {
        let pending: Promise<ProxyResponse>;
        try {
          pending = next(request);
        } catch (error) {
          return Promise.reject(error).then(undefined, failed);
        }
        return pending.then(answered, failed);
      },
  };
}

/** Counts an accepted WebSocket session until its client socket closes. */
function trackSession(response: ProxyResponse, stats: RouteStats, counters: GenerationCounters): ProxyResponse {
  const handoff = response.upgrade!;
  const tracked: UpgradeHandoff = {
    accept(incoming, socket: Duplex, head, headers) {
      stats.websocketSessions++;
      counters.websocketSessions++;
      socket.once('close', () => {
        stats.websocketSessions--;
        counters.websocketSessions--;
      });
      handoff.accept(incoming, socket, head, headers);
    },
    reject: (reason) => handoff.reject(reason),
  };
  return { ...response, upgrade: tracked };
}

/**
 * Whether a warn line is the transport's report of one failed upstream attempt
 * (`logUpstreamFailure` from `@relay/core`: `attempt` and `code` fields), and its code. Timeouts
 * and refused or reset connections are logged this way for every attempt, so the route's logger
 * turns them into the target's health at no cost to the attempts that succeed.
 *
 * @example
 * const code = failedAttemptCode(fields); // 'ERR_UPSTREAM_UNREACHABLE'
 */
export function failedAttemptCode(fields: Record<string, unknown>): string | null {
  return typeof fields.attempt === 'number' && typeof fields.code === 'string' ? fields.code : null;
}
