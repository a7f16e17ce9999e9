import type { z } from 'zod';
import type { RouteFeature } from './feature.js';
import { balanceFeature } from './feature-balance.js';
import { bodyLimitFeature, compressFeature } from './feature-body.js';
import { cookiesFeature } from './feature-cookies.js';
import { headersFeature } from './feature-headers.js';
import { rateLimitFeature } from './feature-limits.js';
import { accessLogFeature, metricsFeature, requestIdFeature, tracingFeature } from './feature-observe.js';
import { retryFeature } from './feature-retry.js';
import { rewriteLocationFeature } from './feature-rewrite-location.js';
import { websocketFeature } from './feature-websocket.js';

/**
 * Every stage package the gateway knows, one route key each. A package that lands later is one
 * `feature-*.ts` file and one entry here; the route schema, its type and the relay builder pick it up.
 *
 * @example
 * routeFeatures.map((feature) => feature.key); // ['headers', 'cookies', 'rewriteLocation', 'retry', 'balance', 'websocket', …]
 */
export const routeFeatures = [
  headersFeature,
  cookiesFeature,
  rewriteLocationFeature,
  retryFeature,
  balanceFeature,
  websocketFeature,
  rateLimitFeature,
  bodyLimitFeature,
  compressFeature,
  requestIdFeature,
  accessLogFeature,
  metricsFeature,
  tracingFeature,
] as const;

type AnyFeature = RouteFeature<string, z.ZodTypeAny>;

/** The route keys the features add, with their schemas. */
export type FeatureShape<Features extends readonly AnyFeature[]> = {
  [Feature in Features[number] as Feature['key']]: Feature['schema'];
};

/**
 * The schemas of every feature key, for the route object.
 *
 * @example
 * const route = z.object({ upstream, ...featureShape() }).strict();
 */
export function featureShape(): FeatureShape<typeof routeFeatures> {
  const shape: Record<string, z.ZodTypeAny> = {};
  for (const feature of routeFeatures) shape[feature.key] = feature.schema;
  return shape as FeatureShape<typeof routeFeatures>;
}
