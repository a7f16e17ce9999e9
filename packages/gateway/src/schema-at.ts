import { z } from 'zod';

/**
 * The schemas a value at a document path is checked against, through defaults, optionals,
 * refinements, arrays, records, objects and unions (every branch is tried: `rateLimit` is an
 * object or a list of them, so `rateLimit.points` is the object branch's number). Unions at the
 * path itself are spread into their branches; none is returned for a path the schema has no
 * place for.
 *
 * @example
 * schemasAt(gatewayConfigSchema, ['routes', 0, 'rateLimit', 'points']); // [ZodNumber]
 */
export function schemasAt(schema: z.ZodTypeAny, path: ReadonlyArray<string | number>): z.ZodTypeAny[] {
  const current = unwrapped(schema);
  if (current instanceof z.ZodUnion) return (current.options as z.ZodTypeAny[]).flatMap((option) => schemasAt(option, path));
  if (path.length === 0) return [current];
  const [part, ...rest] = path;
  if (current instanceof z.ZodArray) return typeof part === 'number' ? schemasAt(current.element as z.ZodTypeAny, rest) : [];
  if (current instanceof z.ZodRecord) return schemasAt(current.valueSchema as z.ZodTypeAny, rest);
  if (!(current instanceof z.ZodObject)) return [];
  const next = (current.shape as Record<string, z.ZodTypeAny>)[String(part)];
  return next === undefined ? [] : schemasAt(next, rest);
}

/** The schema inside optionals, nullables, defaults and refinements. */
function unwrapped(schema: z.ZodTypeAny): z.ZodTypeAny {
  let current = schema;
  for (;;) {
    if (current instanceof z.ZodOptional || current instanceof z.ZodNullable) current = current.unwrap() as z.ZodTypeAny;
    else if (current instanceof z.ZodDefault) current = current.removeDefault() as z.ZodTypeAny;
    else if (current instanceof z.ZodEffects) current = current.innerType() as z.ZodTypeAny;
    else return current;
  }
}
