import { memoryStore, rateLimit, type Bucket, type LimitStore } from '@relay/limits';
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
  apply(value, parts, context) {
    if (value === undefined) return;
    (Array.isArray(value) ? value : [value]).forEach((options, index) => {
      // Keyed by the options too: a reload of an unchanged limit keeps the clients' counts (as nginx
      // keeps its limit_req zones), a changed one starts afresh.
      const store = context.keep(`rateLimit[${index}] ${JSON.stringify(options)}`, keptMemoryStore);
      parts.stages.push({ order: stageOrder.rateLimit, stage: rateLimit({ ...options, store }) });
    });
  },
});

/**
 * A memory store that binds its buckets once: `memoryStore()` gives each `rateLimit()` built on it
 * new buckets, and every reload builds the stage again, so the store kept across reloads hands the
 * same buckets back (its options, and so its policy, are part of the key it is kept under).
 */
function keptMemoryStore(): LimitStore {
  const store = memoryStore();
  let bucket: Bucket | undefined;
  return { kind: store.kind, bind: (policy) => (bucket ??= store.bind(policy)) };
}
