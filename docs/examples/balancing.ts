// The examples of docs/balancing.md and packages/balance/README.md. balancing.test.ts runs each
// against real upstreams on 127.0.0.1.
import { createRelay, type Logger, type Relay } from '@relay/core';
import { balance, type BalanceStage } from '@relay/balance';
import { metrics } from '@relay/observe';
import { retry } from '@relay/retry';
import type { Registry } from 'prom-client';

// Three replicas, one twice as big; retries go to another replica; a dead one is ejected.
export function apiPool(replicas = ['http://10.0.0.1:8000', 'http://10.0.0.2:8000', 'http://10.0.0.3:8000']): { api: Relay; pool: BalanceStage } {
  const pool = balance({
    targets: [replicas[0]!, replicas[1]!, { url: replicas[2]!, weight: 2 }],
    outlier: { consecutiveFailures: 5, baseEjectionTime: 30_000 }, // Envoy's defaults
    healthCheck: { path: '/health', interval: 5_000, timeout: 2_000 },
  });
  const api = createRelay({
    targetBaseUrl: replicas[0]!, // the path prefix and the default; balance chooses the origin per attempt
    mountPath: '/api',
    stages: [retry({ maxRetries: 2 }), pool], // retry outside: each retry is a new pick
  });
  return { api, pool };
}

// Sticky sessions: a session cookie always reaches the same replica while it is in the pool.
export function stickyPool(replicas: string[]): Relay {
  return createRelay({
    targetBaseUrl: replicas[0]!,
    stages: [balance({ targets: replicas, strategy: 'hash', hashKey: { cookie: 'session' } })],
  });
}

// Least in-flight for uneven requests, with a cap per replica: past 100 in flight and 50 waiting, 503.
export function guardedPool(replicas: string[]): Relay {
  return createRelay({
    targetBaseUrl: replicas[0]!,
    stages: [balance({ targets: replicas, strategy: 'least-request', circuit: { maxRequests: 100, maxPending: 50 } })],
  });
}

// Every address of a name (a Kubernetes headless service, Docker Compose --scale), looked up every 10 s.
export function discoveredPool(service = 'http://app.internal:8000', logger?: Logger): { api: Relay; pool: BalanceStage } {
  const pool = balance({
    targets: [{ dns: service, interval: 10_000 }],
    onStateChange: (event) => logger?.info({ target: event.url, change: event.change }, 'upstream pool changed'),
  });
  const api = createRelay({ targetBaseUrl: service, stages: [pool], ...(logger ? { logger } : {}) });
  return { api, pool };
}

// Each target's health, ejection and circuit state in the Prometheus scrape, beside the request metrics.
export function observedPool(replicas: string[], registry: Registry): { api: Relay; pool: BalanceStage; scrape: () => Promise<string> } {
  const pool = balance({ targets: replicas, healthCheck: { path: '/health' }, circuit: { maxRequests: 100 } });
  const m = metrics({ registry, relay: 'api', pools: { api: pool } });
  // pool before m.attempt: each attempt's series carries the target the pool chose.
  const api = createRelay({ targetBaseUrl: replicas[0]!, stages: [m.request, retry({ maxRetries: 2 }), pool, m.attempt] });
  return { api, pool, scrape: () => registry.metrics() };
}

// Deploys: replace the list at run time; requests in flight finish where they are.
export function redeploy(pool: BalanceStage, next: string[]): string[] {
  pool.setTargets(next);
  return pool.targets().map((target) => `${target.url} ${target.healthy ? 'healthy' : 'unhealthy'}, ${target.inFlight} in flight`);
}

// On shutdown, stop the health checks and DNS lookups too.
export async function stopAll(api: Relay, pool: BalanceStage): Promise<void> {
  await api.shutdown();
  pool.stop();
}

// Every option with its default (docs/configuration.md).
export function balanceDefaults(): BalanceStage {
  return balance({
    targets: ['http://10.0.0.1:8000', { url: 'http://10.0.0.2:8000', weight: 1 }, { dns: 'http://app.internal:8000', interval: 30_000, weight: 1 }],
    strategy: 'round-robin',            // or 'least-request', 'hash'
    outlier: { consecutiveFailures: 5, baseEjectionTime: 30_000, maxEjectionTime: 300_000, maxEjectionPercent: 50, statuses: [502, 503, 504] },
    healthCheck: { path: '/health', interval: 5_000, timeout: 2_000, healthyThreshold: 2, unhealthyThreshold: 3 }, // default: off
    circuit: { maxRequests: 1_000, maxPending: 0, retryAfter: 1 },                                                 // default: off
  });
}
