import { rateLimit } from '@relay/limits';
import { z } from 'zod';
import { routeFeature, stageOrder } from './feature.js';

const positive = z.number().int().positive();

/**
 * `rateLimit:` on a route: one `rateLimit()` from `@relay/limits` (memory store; a shared Redis
 * store needs code), or a list of them (per key and global), outermost first.
 *
 * @example
 * rateLimitSchema.parse({ points: 100, duration: 60000, key: { header: 'x-api-key' } });
 */
export const rateLimitSchema = z
  .object({
    points: positive,
    duration: positive,
    burst: positive,
    key: z.union([z.enum(['client', 'route', 'path']), z.object({ header: z.string().min(1) }).strict(), z.object({ cookie: z.string().min(1) }).strict()]),
    name: z.string().min(1),
    dryRun: z.boolean(),
    headers: z.boolean(),
  })
  .partial({ burst: true, key: true, name: true, dryRun: true, headers: true })
  .strict();

/**
 * The `rateLimit` route key → `rateLimit()` stages, before the body and cookie rules.
 *
 * @example
 * // rateLimit: { points: 100, duration: 60000 }
 */
export const rateLimitFeature = routeFeature({
  key: 'rateLimit',
  schema: z.union([rateLimitSchema, z.array(rateLimitSchema).min(1)]).optional(),
  apply(value, parts) {
    if (value === undefined) return;
    for (const options of Array.isArray(value) ? value : [value]) parts.stages.push({ order: stageOrder.rateLimit, stage: rateLimit(options) });
  },
});
