import { rewriteLocation } from '@relay/headers';
import { z } from 'zod';
import { routeFeature, stageOrder } from './feature.js';

/**
 * `rewriteLocation:` on a route: `true`, or the options of `rewriteLocation()` from `@relay/headers`.
 *
 * @example
 * rewriteLocationSchema.parse(true);
 */
export const rewriteLocationSchema = z.union([
  z.boolean(),
  z.object({ publicOrigin: z.string(), relative: z.boolean() }).partial().strict(),
]);

/**
 * The `rewriteLocation` route key → a `rewriteLocation()` stage (redirects point at the gateway).
 *
 * @example
 * // rewriteLocation: true
 */
export const rewriteLocationFeature = routeFeature({
  key: 'rewriteLocation',
  schema: rewriteLocationSchema.optional(),
  apply(value, parts) {
    if (value === undefined || value === false) return;
    parts.stages.push({ order: stageOrder.rewriteLocation, stage: rewriteLocation(value === true ? {} : value) });
  },
});
