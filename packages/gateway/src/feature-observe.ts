import { accessLog, metrics, requestId, tracing, type Observation } from '@relay/observe';
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
 * `metrics:` on a route: prom-client series in the default registry, served at the gateway's
 * `/metrics`, their `relay` label the route's label (its `name`): two routes to one upstream stay
 * apart. Their `target` label is left empty: `/metrics` answers on public listeners by default,
 * and must name no internal address.
 *
 * @example
 * // metrics: { routes: ["/users/:id"] }
 */
export const metricsFeature = routeFeature({
  key: 'metrics',
  schema: z.union([z.boolean(), z.object({ routes: z.array(z.string().min(1)) }).partial().strict()]).optional(),
  apply(value, parts, context) {
    if (value === undefined || value === false) return;
    addObservation(parts, stageOrder.metrics, metrics({ ...(value === true ? {} : value), relay: context.routeLabel, targets: false }));
  },
});

const requestIdSchema = z
  .object({ header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected a header name'), trustIncoming: z.boolean(), response: z.boolean(), maxLength: z.number().int().positive() })
  .partial()
  .strict();

/**
 * `requestId:` on a route: the client's `X-Request-Id` kept (or one made), sent upstream, back to
 * the client and into the access lines (`requestId()` from `@relay/observe`). Outside the access
 * log, so its line has the id.
 *
 * @example
 * // requestId: { header: x-correlation-id }
 */
export const requestIdFeature = routeFeature({
  key: 'requestId',
  schema: z.union([z.boolean(), requestIdSchema]).optional(),
  apply(value, parts) {
    if (value === undefined || value === false) return;
    parts.stages.push({ order: stageOrder.requestId, stage: requestId(value === true ? {} : value) });
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
