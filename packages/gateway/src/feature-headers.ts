import { headers } from '@relay/headers';
import { z } from 'zod';
import { routeFeature, stageOrder } from './feature.js';

const headerValue = z.union([z.string(), z.array(z.string())]);
const headerNames = z.array(z.string().min(1));

/**
 * `headers:` on a route: the options of `headers()` from `@relay/headers`, without function values.
 *
 * @example
 * headersSchema.parse({ dropRequest: ['cookie'] });
 */
export const headersSchema = z
  .object({
    extraRequest: z.record(headerValue),
    dropRequest: headerNames,
    allowRequest: headerNames,
    extraResponse: z.record(headerValue),
    dropResponse: headerNames,
    allowResponse: headerNames,
    forwarded: z.union([z.boolean(), z.enum(['append', 'replace'])]),
    via: z.union([z.boolean(), z.string()]),
  })
  .partial()
  .strict();

/**
 * The `headers` route key → a `headers()` stage, per attempt (inside the retry loop).
 *
 * @example
 * // routes: [{ match: { path: '/api' }, upstream: 'http://api:8000', headers: { dropRequest: ['cookie'] } }]
 */
export const headersFeature = routeFeature({
  key: 'headers',
  schema: headersSchema.optional(),
  apply(value, parts) {
    if (value !== undefined) parts.stages.push({ order: stageOrder.headers, stage: headers(value) });
  },
});
