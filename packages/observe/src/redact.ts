import type { HeaderRecord } from '@relay/core';

/** What happens to the query string of a logged path. */
export type QueryMode = 'redact' | 'keep' | 'drop';

/** The text that replaces a secret. */
export const redacted = '[REDACTED]';

/** Longest path written to a log line; the rest is cut with `…`. */
const maxPathLength = 2048;

/**
 * The path of a request target for logs and spans. `redact` keeps parameter names and replaces
 * every value (and every bare parameter, which may be a token) with `[REDACTED]`; `drop` removes
 * the query; `keep` leaves it.
 */
export function loggedPath(target: string, mode: QueryMode): string {
  const query = target.indexOf('?');
  let path = target;
  if (query >= 0 && mode !== 'keep') path = mode === 'drop' ? target.slice(0, query) : target.slice(0, query + 1) + redactQuery(target.slice(query + 1));
  return path.length > maxPathLength ? `${path.slice(0, maxPathLength)}…` : path;
}

/** Each `name=value` pair of a query with its value replaced; a scan, no split and join per request. */
function redactQuery(query: string): string {
  let text = '';
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    if (start > 0) text += '&';
    if (end > start) {
      const equals = query.indexOf('=', start);
      text += equals < 0 || equals > end ? redacted : `${query.slice(start, equals + 1)}${redacted}`;
    }
    start = end + 1;
  }
  return text;
}

/** A request header's value for a log line: `[REDACTED]` when secret, repeated ones joined, `undefined` when absent. */
export function headerValue(headers: HeaderRecord, name: string, secret: ReadonlySet<string>): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return secret.has(name) ? redacted : headerText(value);
}

/** A header's value as one string: repeated fields joined as RFC 9110 §5.3 combines them. */
export function headerText(value: string | readonly string[]): string {
  return typeof value === 'string' ? value : value.join(', ');
}

/** Picks the listed request headers for a log line, secrets replaced. `undefined` for absent ones. */
export function pickHeaders(headers: HeaderRecord, names: readonly string[], secret: ReadonlySet<string>): Record<string, string | undefined> {
  const picked: Record<string, string | undefined> = {};
  for (const name of names) picked[name] = headerValue(headers, name, secret);
  return picked;
}
