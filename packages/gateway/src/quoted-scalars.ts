import { z } from 'zod';
import type { DocumentPath } from './env.js';
import { typedValue } from './env.js';
import { gatewayConfigSchema } from './schema.js';

/**
 * Turns the quoted references in `kept` back into numbers or booleans where the schema takes only
 * a number or a boolean there: `port: "${PORT}"` stays a port (in a YAML flow mapping `{ }` a
 * reference must be quoted), while a quoted header value of digits stays a string. The data is
 * parsed once more only when a quoted reference read as a number or boolean.
 *
 * @example
 * const data = quotedScalars(interpolated, quoting.kept);
 */
export function quotedScalars(data: unknown, kept: readonly DocumentPath[]): unknown {
  if (kept.length === 0) return data;
  const result = gatewayConfigSchema.safeParse(data);
  if (result.success) return data;
  const keys = new Set(kept.map(pathKey));
  for (const issue of result.error.issues) {
    if (issue.code !== z.ZodIssueCode.invalid_type || (issue.expected !== 'number' && issue.expected !== 'boolean')) continue;
    if (keys.has(pathKey(issue.path))) replaceAt(data, issue.path);
  }
  return data;
}

function pathKey(path: DocumentPath): string {
  return JSON.stringify(path);
}

/** Replaces the string at `path` (inside data this module's caller made) with its typed value. */
function replaceAt(data: unknown, path: DocumentPath): void {
  let parent = data as Record<string | number, unknown>;
  for (const part of path.slice(0, -1)) parent = parent[part] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  parent[last] = typedValue(String(parent[last]));
}
