import type { RelayErrorCode } from '@relay/core';
import { retry } from '@relay/retry';
import { z } from 'zod';
import { routeFeature, stageOrder } from './feature.js';

const milliseconds = z.number().int().nonnegative();

/**
 * `retry:` on a route: the options of `retry()` from `@relay/retry`.
 *
 * @example
 * retrySchema.parse({ maxRetries: 2 });
 */
export const retrySchema = z
  .object({
    maxRetries: z.number().int().nonnegative(),
    backoffFactor: milliseconds,
    maxBackoff: milliseconds,
    jitter: z.boolean(),
    statuses: z.array(z.number().int().min(100).max(599)),
    errors: z.array(z.string().regex(/^ERR_[A-Z_]+$/, 'expected an error code such as ERR_UPSTREAM_RESET')),
    methods: z.array(z.string().min(1)),
    maxReplayBytes: z.number().int().nonnegative(),
    retryAfter: z.union([milliseconds, z.literal(false)]),
    deadline: milliseconds,
  })
  .partial()
  .strict();

/**
 * The `retry` route key → a `retry()` stage; everything after it in the stage order runs per attempt.
 *
 * @example
 * // retry: { maxRetries: 2, backoffFactor: 100 }
 */
export const retryFeature = routeFeature({
  key: 'retry',
  schema: retrySchema.optional(),
  apply(value, parts) {
    if (value === undefined) return;
    const { errors, ...rest } = value;
    const options = errors === undefined ? rest : { ...rest, errors: errors as RelayErrorCode[] };
    parts.stages.push({ order: stageOrder.retry, stage: retry(options) });
  },
});
