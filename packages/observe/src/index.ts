export { accessLog, type AccessLogFields, type AccessLogLevel, type AccessLogOptions, type LineSink } from './access-log.js';
export { metrics, metricsHandler, type MetricsObservation, type MetricsOptions, type PoolTargetView, type PoolView } from './metrics.js';
export { observe, type ObserveOptions, type ObserveStages } from './observe.js';
export type { Observation } from './observation.js';
export { requestId, requestIdOf, type RequestIdOptions } from './request-id.js';
export { tracing, type TracingOptions } from './tracing.js';
