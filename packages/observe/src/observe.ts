import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { accessLogFactory, accessLogSettings, type AccessLogOptions } from './access-log.js';
import { metricsFactory, metricsHandler, metricsSettings, type MetricsOptions } from './metrics.js';
import { createObservation, type Observation, type ObserverFactory } from './observation.js';
import { checkOptions } from './options.js';
import { requestId, type RequestIdOptions } from './request-id.js';
import { tracingFactory, tracingSettings, type TracingOptions } from './tracing.js';

/** Options of `observe()`: each part is off unless given (`true` for its defaults). */
export interface ObserveOptions {
  /** A request id per request (`requestId()` options). */
  requestId?: RequestIdOptions | boolean;
  /** Access log lines (`accessLog()` options). */
  accessLog?: AccessLogOptions | boolean;
  /** Prometheus metrics (`metrics()` options). */
  metrics?: MetricsOptions | boolean;
  /** OpenTelemetry spans (`tracing()` options). */
  tracing?: TracingOptions | boolean;
}

/** What `observe()` returns: the two stages, and the metrics registry and handler when metrics are on. */
export interface ObserveStages extends Observation {
  /** The metrics registry, `null` without `metrics`. */
  readonly registry: Registry | null;
  /** A `/metrics` request listener for `registry`, `null` without `metrics`. */
  readonly metricsHandler: ((req: IncomingMessage, res: ServerResponse) => void) | null;
}

const optionNames = ['requestId', 'accessLog', 'metrics', 'tracing'] as const;

function part<T extends object>(value: T | boolean | undefined, option: string): T | null {
  if (value === undefined || value === false) return null;
  if (value === true) return {} as T;
  if (value === null || typeof value !== 'object') throw new TypeError(`${option} must be an options object or a boolean`);
  return value;
}

/**
 * Request ids, access logs, metrics and traces in one pair of stages, one record per request:
 * `request` goes first (outside `retry()`), `attempt` last (inside it, next to the transport).
 *
 * @example
 * const obs = observe({ requestId: true, accessLog: true, metrics: { registry }, tracing: true });
 * createRelay({ targetBaseUrl: 'http://api:8000', logger, stages: [obs.request, retry({ maxRetries: 2 }), obs.attempt] });
 */
export function observe(options: ObserveOptions): ObserveStages {
  checkOptions(options, optionNames, 'observe()');
  const idOptions = part(options.requestId, 'requestId');
  const logOptions = part(options.accessLog, 'accessLog');
  const metricOptions = part(options.metrics, 'metrics');
  const traceOptions = part(options.tracing, 'tracing');
  const factories: ObserverFactory[] = [];
  // Tracing first: its attempt span is open before the others look at the attempt.
  if (traceOptions !== null) factories.push(tracingFactory(tracingSettings(traceOptions)));
  const metricSettings = metricOptions === null ? null : metricsSettings(metricOptions);
  if (metricSettings !== null) factories.push(metricsFactory(metricSettings));
  if (logOptions !== null) factories.push(accessLogFactory(accessLogSettings(logOptions)));
  const { request, attempt } = createObservation(factories, idOptions === null ? null : requestId(idOptions));
  return {
    request,
    attempt,
    registry: metricSettings?.registry ?? null,
    metricsHandler: metricSettings === null ? null : metricsHandler(metricSettings.registry),
  };
}
