import { z } from 'zod';
import type { DocumentPath } from './env.js';
import { typedValue } from './env.js';
import { gatewayConfigSchema } from './schema.js';
import { schemasAt } from './schema-at.js';

/**
 * Turns the quoted references in `kept` back into numbers or booleans where the schema takes no
 * such string but takes the number or boolean it reads as: `port: "${PORT}"` stays a port (in a
 * YAML flow mapping `{ }` a reference must be quoted), while a quoted header value of digits stays
 * a string. The schema is read at each path, through unions (`rateLimit` is one limit or a list,
 * `websocket` is `true` or options, a pool target is a URL or an object), so a key inside one is
 * treated as a key outside.
 *
 * @example
 * const data = quotedScalars(interpolated, quoting.kept);
 */
export function quotedScalars(data: unknown, kept: readonly DocumentPath[]): unknown {
  for (const path of kept) {
    const text = String(valueAt(data, path));
    const typed = typedValue(text);
    const schemas = schemasAt(gatewayConfigSchema, path);
    if (!schemas.some((schema) => takesText(schema, text)) && schemas.some((schema) => takesScalar(schema, typed))) replaceAt(data, path, typed);
  }
  return data;
}

/** Whether a schema (a union's branch, refinements aside) takes this string as it is. */
function takesText(schema: z.ZodTypeAny, text: string): boolean {
  if (schema instanceof z.ZodString) return true;
  if (schema instanceof z.ZodEnum) return (schema.options as string[]).includes(text);
  if (schema instanceof z.ZodLiteral) return schema.value === text;
  // Anything else that is no object, list, number or boolean: keep the text, as before the schema knew.
  return !(schema instanceof z.ZodObject || schema instanceof z.ZodArray || schema instanceof z.ZodRecord || schema instanceof z.ZodNumber || schema instanceof z.ZodBoolean);
}

/** Whether a schema (refinements aside) takes this number or boolean. */
function takesScalar(schema: z.ZodTypeAny, value: unknown): boolean {
  if (schema instanceof z.ZodNumber) return typeof value === 'number';
  if (schema instanceof z.ZodBoolean) return typeof value === 'boolean';
  if (schema instanceof z.ZodLiteral) return schema.value === value;
  return false;
}

function valueAt(data: unknown, path: DocumentPath): unknown {
  let value = data;
  for (const part of path) value = (value as Record<string | number, unknown>)[part];
  return value;
}

/** Replaces the string at `path` (inside data this module's caller made) with its typed value. */
function replaceAt(data: unknown, path: DocumentPath, typed: unknown): void {
  let parent = data as Record<string | number, unknown>;
  for (const part of path.slice(0, -1)) parent = parent[part] as Record<string | number, unknown>;
  parent[path[path.length - 1]!] = typed;
}
