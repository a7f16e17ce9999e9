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
    // Any case, as cookies() takes it: LAX, lax and Lax alike.
    sameSite: z.string().refine((value) => /^(strict|lax|none)$/i.test(value), { message: 'expected Strict, Lax or None (any case)' }),
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
