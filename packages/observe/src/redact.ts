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

function redactQuery(query: string): string {
  return query.split('&').map(redactPair).join('&');
}

function redactPair(pair: string): string {
  if (pair === '') return '';
  const equals = pair.indexOf('=');
  return equals < 0 ? redacted : `${pair.slice(0, equals + 1)}${redacted}`;
}

/** Picks the listed request headers for a log line, secrets replaced. `undefined` for absent ones. */
export function pickHeaders(headers: HeaderRecord, names: readonly string[], secret: ReadonlySet<string>): Record<string, string | undefined> {
  const picked: Record<string, string | undefined> = {};
  for (const name of names) {
    const value = headers[name];
    if (value === undefined) picked[name] = undefined;
    else picked[name] = secret.has(name) ? redacted : typeof value === 'string' ? value : value.join(', ');
  }
  return picked;
}
