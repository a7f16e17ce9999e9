import { bodyLimit, compress } from '@relay/body';
import { z } from 'zod';
import { routeFeature, stageOrder } from './feature.js';

const bytes = z.number().int().nonnegative();

/**
 * `bodyLimit:` on a route: `bodyLimit()` from `@relay/body` (413 over the limit), by default and per
 * media type.
 *
 * @example
 * // bodyLimit: { maxBytes: 1048576, types: { "image/png": 10485760 } }
 */
export const bodyLimitFeature = routeFeature({
  key: 'bodyLimit',
  schema: z.object({ maxBytes: bytes, types: z.record(bytes) }).partial().strict().optional(),
  apply(value, parts) {
    if (value !== undefined) parts.stages.push({ order: stageOrder.bodyLimit, stage: bodyLimit(value) });
  },
});

const compressSchema = z
  .object({
    threshold: bytes,
    types: z.array(z.string().min(1)),
    gzipLevel: z.number().int().min(1).max(9),
    brotliQuality: z.number().int().min(0).max(11),
  })
  .partial()
  .strict();

/**
 * `compress:` on a route: `compress()` from `@relay/body` toward clients (`true` for its defaults).
 *
 * @example
 * // compress: true
 */
export const compressFeature = routeFeature({
  key: 'compress',
  schema: z.union([z.boolean(), compressSchema]).optional(),
  apply(value, parts) {
    if (value === undefined || value === false) return;
    parts.stages.push({ order: stageOrder.compress, stage: compress(value === true ? {} : value) });
  },
});
