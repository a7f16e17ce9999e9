import { answer, type ListenerResponse } from './answer.js';
import type { GatewayView } from './cluster-view.js';
import type { Gateway, MetricsEndpoint } from './gateway.js';

type PromClient = typeof import('prom-client');

/**
 * `/metrics` from prom-client's default registry (so metrics other packages register there, such
 * as `@relay/observe`'s, show up too), plus the gateway's own, read from its counters at scrape
 * time so nothing is added to the request path. `undefined` when prom-client cannot be loaded.
 * In a worker of `--workers N` (`view` set) it answers with every worker's metrics, gathered by
 * the primary with prom-client's `AggregatorRegistry`: counters and sessions summed, a target up
 * only when it is up for every worker.
 *
 * @example
 * const metrics = await gatewayMetrics(() => gateway);
 */
export async function gatewayMetrics(current: () => Gateway | null, view?: GatewayView): Promise<MetricsEndpoint | undefined> {
  let client: PromClient;
  try {
    client = await import('prom-client');
  } catch {
    return undefined;
  }
  // The collectors are the process's (prom-client's default registry): they read the gateway served last.
  source = current;
  registerOnce(client);
  const registry = client.register;
  // Answers the primary's requests for this worker's registry (prom-client listens once constructed).
  if (view !== undefined) new client.AggregatorRegistry();
  return function metricsEndpoint(res: ListenerResponse) {
    (view === undefined ? registry.metrics() : view.metrics()).then(
      (text) => answer(res, 200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }, text),
      (error: Error) => answer(res, 503, { 'content-type': 'text/plain' }, `metrics unavailable: ${error.message}\n`),
    );
  };
}

let registered = false;
/** The gateway the collectors read: the one `serve()` started last (an embedding app may stop one and serve another). */
let source: () => Gateway | null = () => null;

function registerOnce(client: PromClient): void {
  if (registered) return;
  registered = true;
  client.collectDefaultMetrics();
  new client.Counter({
    name: 'relay_gateway_requests_total',
    help: 'Requests served by each route (responses and failures)',
    labelNames: ['route'],
    collect() {
      this.reset();
      for (const stats of source()?.shared.routes.values() ?? []) this.inc({ route: stats.label }, stats.total);
    },
  });
  new client.Counter({
    name: 'relay_gateway_request_errors_total',
    help: 'Requests of each route that ended in a 5xx or failed',
    labelNames: ['route'],
    collect() {
      this.reset();
      for (const stats of source()?.shared.routes.values() ?? []) this.inc({ route: stats.label }, stats.errors);
    },
  });
  new client.Gauge({
    name: 'relay_gateway_in_flight_requests',
    help: 'Requests in flight, old relays finishing after a reload included',
    collect() {
      this.set(source()?.status().inFlight ?? 0);
    },
  });
  new client.Gauge({
    name: 'relay_gateway_websocket_sessions',
    help: 'Open relayed WebSocket sessions per route',
    labelNames: ['route'],
    collect() {
      this.reset();
      for (const stats of source()?.shared.routes.values() ?? []) this.set({ route: stats.label }, stats.websocketSessions);
    },
  });
  new client.Gauge({
    name: 'relay_gateway_target_up',
    // Labelled by route, not by address: /metrics is on by default and must not publish internal addresses.
    help: "1 when the last attempt to the route's target got an answer other than 502/503/504, 0 when it failed",
    labelNames: ['route'],
    // Across workers: up only when up for every worker that has tried it.
    aggregator: 'min',
    collect() {
      this.reset();
      for (const route of source()?.current.routes ?? []) {
        if (route.health.state !== 'unknown') this.set({ route: route.label }, route.health.state === 'healthy' ? 1 : 0);
      }
    },
  });
  // A pool's targets by route and count, not by address (as relay_gateway_target_up): observe's
  // metrics({ pools }) labels each target by its URL, which a public /metrics must not publish.
  new client.Gauge({
    name: 'relay_gateway_pool_targets',
    help: 'Targets in the pool of each route that lists several upstreams or has balance:',
    labelNames: ['route'],
    aggregator: 'max',
    collect() {
      this.reset();
      for (const route of source()?.current.routes ?? []) if (route.pool !== undefined) this.set({ route: route.label }, route.pool.targets().length);
    },
  });
  new client.Gauge({
    name: 'relay_gateway_pool_targets_up',
    help: "Targets of each route's pool that take traffic: healthy (active health checks) and not ejected (outlier detection)",
    labelNames: ['route'],
    // Across workers: the fewest any worker sees up.
    aggregator: 'min',
    collect() {
      this.reset();
      const now = Date.now();
      for (const route of source()?.current.routes ?? []) {
        if (route.pool === undefined) continue;
        const up = route.pool.targets().filter((target) => target.healthy && target.ejectedUntil <= now).length;
        this.set({ route: route.label }, up);
      }
    },
  });
  new client.Counter({
    name: 'relay_gateway_config_reloads_total',
    help: 'Config reloads by result',
    labelNames: ['result'],
    // Every worker reloads the same config: counted once.
    aggregator: 'max',
    collect() {
      this.reset();
      const reloads = source()?.reloads ?? { succeeded: 0, failed: 0 };
      this.inc({ result: 'success' }, reloads.succeeded);
      this.inc({ result: 'failure' }, reloads.failed);
    },
  });
}
