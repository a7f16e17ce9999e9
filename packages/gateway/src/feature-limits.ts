import { memoryStore, rateLimit, type Bucket, type LimitStore } from '@relay/limits';
import { z } from 'zod';
import { routeFeature, stageOrder, type FeatureContext } from './feature.js';

const positive = z.number().int().positive();

/**
 * `rateLimit:` on a route: one `rateLimit()` from `@relay/limits`, or a list of them (per key and
 * global), outermost first. Its buckets live in the config's `redis` when it has one (shared by
 * every gateway instance), unless the limit says `store: memory`; else in memory (with `--workers N`
 * the primary's, shared by the workers; or `createGateway`'s `limitStore`).
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
    failOpen: z.boolean(),
    store: z.enum(['redis', 'memory']),
  })
  .partial({ burst: true, key: true, name: true, dryRun: true, headers: true, failOpen: true, store: true })
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
    named(Array.isArray(value) ? value : [value]).forEach((item, index) => {
      // The file's `store` (`redis`/`memory`) says where; the stage gets the store itself.
      parts.stages.push({ order: stageOrder.rateLimit, stage: rateLimit({ ...item, store: storeOf(item, index, context) }) });
    });
  },
});

type RateLimitItem = z.output<typeof rateLimitSchema>;

/**
 * Where one limit counts. In Redis (the config's `redis`, unless `store: memory`) its buckets are
 * the route's label and the limit's name, whatever its options: instances that run an older
 * config during a rolling deploy keep counting in the same buckets. (`relay check` connects to
 * nothing, so there the limit gets a memory store; the schema has checked the block.)
 */
function storeOf(item: RateLimitItem, index: number, context: FeatureContext): LimitStore {
  if (item.store !== 'memory' && context.redisStore !== undefined) return context.redisStore;
  // Keyed by the options too: a reload of an unchanged limit keeps the clients' counts (as nginx
  // keeps its limit_req zones), a changed one starts afresh.
  const key = `rateLimit[${index}] ${JSON.stringify(item)}`;
  // A shared store (the primary of `--workers N`): one count for every process, as nginx's workers share a limit_req zone.
  return context.keep(key, () => context.limitStore?.(key) ?? keptMemoryStore());
}

/**
 * Names the unnamed limits of a list by their rate (`5-per-1s`, `100-per-60s`; `-2`, `-3` … when
 * taken): all would be `default`, and the IETF draft forbids two items with one policy name in a
 * response (the name is what ties a `RateLimit` item to its `RateLimit-Policy` item). A lone limit
 * keeps `default`. Two limits given the same name are refused.
 */
function named(limits: RateLimitItem[]): RateLimitItem[] {
  if (limits.length === 1) return limits;
  const taken = new Set<string>();
  for (const { name } of limits) {
    if (name === undefined) continue;
    if (taken.has(name)) throw new TypeError(`rateLimit: two limits are named "${name}": each needs its own name (it ties RateLimit to RateLimit-Policy)`);
    taken.add(name);
  }
  return limits.map((limit) => {
    if (limit.name !== undefined) return limit;
    const base = `${limit.points}-per-${limit.duration % 1000 === 0 ? `${limit.duration / 1000}s` : `${limit.duration}ms`}`;
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    taken.add(name);
    return { ...limit, name };
  });
}

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
