import { accessLog, metrics, tracing, type Observation } from '@relay/observe';
import { z } from 'zod';
import { stageOrder, routeFeature, type RouteParts } from './feature.js';

/** An observation's two stages: one around the whole request, one inside the retry loop per attempt. */
function addObservation(parts: RouteParts, order: number, observation: Observation): void {
  parts.stages.push({ order, stage: observation.request }, { order: stageOrder.observeAttempt, stage: observation.attempt });
}

const accessLogSchema = z
  .object({ format: z.enum(['json', 'combined']), query: z.enum(['redact', 'keep', 'drop']), headers: z.array(z.string().min(1)) })
  .partial()
  .strict();

/**
 * `accessLog:` on a route: one line per request to the gateway's log (`accessLog()` from `@relay/observe`).
 *
 * @example
 * // accessLog: { format: combined }
 */
export const accessLogFeature = routeFeature({
  key: 'accessLog',
  schema: z.union([z.boolean(), accessLogSchema]).optional(),
  apply(value, parts) {
    if (value === undefined || value === false) return;
    addObservation(parts, stageOrder.accessLog, accessLog(value === true ? {} : value));
  },
});

/**
 * `metrics:` on a route: prom-client series in the default registry, served at the gateway's `/metrics`.
 *
 * @example
 * // metrics: { routes: ["/users/:id"] }
 */
export const metricsFeature = routeFeature({
  key: 'metrics',
  schema: z.union([z.boolean(), z.object({ routes: z.array(z.string().min(1)) }).partial().strict()]).optional(),
  apply(value, parts) {
    if (value === undefined || value === false) return;
    addObservation(parts, stageOrder.metrics, metrics(value === true ? {} : value));
  },
});

/**
 * `tracing:` on a route: a CLIENT span per attempt through the global OpenTelemetry tracer provider
 * (register one with the SDK in a preloaded module; without it spans are no-ops).
 *
 * @example
 * // tracing: { serverSpan: true }
 */
export const tracingFeature = routeFeature({
  key: 'tracing',
  schema: z.union([z.boolean(), z.object({ serverSpan: z.boolean(), includeQuery: z.boolean() }).partial().strict()]).optional(),
  apply(value, parts) {
    if (value === undefined || value === false) return;
    addObservation(parts, stageOrder.tracing, tracing(value === true ? {} : value));
  },
});
