import { toRelayError, type Handler, type ProxyRequest, type ProxyResponse, type Stage, type UpgradeHandoff } from '@relay/core';
import type { Duplex } from 'node:stream';
import type { GenerationCounters, RouteStats, TargetHealth } from './stats.js';

/**
 * The gateway's own outermost stage: counts each request of a route (an error when it ends in a 5xx
 * or fails) and each WebSocket session it opens, for the status page, `/metrics` and reloads.
 * With `health` it also records the target's health (used when no retry sits in between).
 *
 * @example
 * stages.unshift(routeStatsStage({ stats, counters, health: null }));
 */
export function routeStatsStage(options: { stats: RouteStats; counters: GenerationCounters; health: TargetHealth | null }): Stage {
  const { stats, counters, health } = options;
  return {
    name: 'gateway-route-stats',
    wrap: (next: Handler) =>
      async function routeStats(request: ProxyRequest): Promise<ProxyResponse> {
        let response: ProxyResponse;
        try {
          response = await next(request);
        } catch (error) {
          const code = toRelayError(error).code;
          if (code !== 'ERR_CLIENT_ABORTED') stats.record(true);
          health?.failed(code);
          throw error;
        }
        stats.record(response.status >= 500);
        health?.answered(response.status);
        return response.upgrade === undefined || response.status !== 101 ? response : trackSession(response, stats, counters);
      },
  };
}

/**
 * The innermost stage: the outcome of each attempt (inside a retry loop, each retry counts) is
 * the target's health as the status page shows it.
 *
 * @example
 * stages.push(targetHealthStage(health));
 */
export function targetHealthStage(health: TargetHealth): Stage {
  return {
    name: 'gateway-target-health',
    wrap: (next: Handler) =>
      async function targetHealth(request: ProxyRequest): Promise<ProxyResponse> {
        try {
          const response = await next(request);
          health.answered(response.status);
          return response;
        } catch (error) {
          const code = toRelayError(error).code;
          if (code !== 'ERR_CLIENT_ABORTED') health.failed(code);
          throw error;
        }
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
