import { cookies } from '@relay/cookies';
import { z } from 'zod';
import { routeFeature, stageOrder } from './feature.js';

/**
 * `cookies:` on a route: the options of `cookies()` from `@relay/cookies`, with maps instead of functions.
 *
 * @example
 * cookiesSchema.parse({ rewriteDomain: { 'auth.internal': '' } });
 */
export const cookiesSchema = z
  .object({
    rewriteDomain: z.record(z.string()),
    rewritePath: z.record(z.string()),
    secure: z.boolean(),
    sameSite: z.enum(['Strict', 'Lax', 'None', 'strict', 'lax', 'none']),
  })
  .partial()
  .strict();

/**
 * The `cookies` route key → a `cookies()` stage, outside the retry loop.
 *
 * @example
 * // cookies: { rewriteDomain: { 'auth.internal': '' } }
 */
export const cookiesFeature = routeFeature({
  key: 'cookies',
  schema: cookiesSchema.optional(),
  apply(value, parts) {
    if (value === undefined) return;
    const { sameSite, ...rest } = value;
    const options = sameSite === undefined ? rest : { ...rest, sameSite: capitalize(sameSite) };
    parts.stages.push({ order: stageOrder.cookies, stage: cookies(options) });
  },
});

function capitalize(value: string): 'Strict' | 'Lax' | 'None' {
  return (value[0]!.toUpperCase() + value.slice(1).toLowerCase()) as 'Strict' | 'Lax' | 'None';
}
