import { loggableTarget } from '@relay/core/transport';
import { clientText } from './text.js';

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
  // An absolute-form target's password and a fragment's token never reach a log (the relay refuses both with a 400).
  const source = loggableTarget(target);
  const query = source.indexOf('?');
  let path = source;
  if (query >= 0 && mode !== 'keep') path = mode === 'drop' ? source.slice(0, query) : source.slice(0, query + 1) + redactQuery(source.slice(query + 1));
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

/** Request headers as a log line reads them: the client's (node's parsed ones), or a stage's record. */
export type LoggedHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * A request header's value for a log line: `[REDACTED]` when secret, repeated ones joined,
 * `undefined` when absent. The Referer is a URL whose query may hold a token (a reset link's):
 * its query is treated as the request's (`query`).
 */
export function headerValue(headers: LoggedHeaders, name: string, secret: ReadonlySet<string>, query: QueryMode): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  if (secret.has(name)) return redacted;
  return name === 'referer' ? loggedPath(headerText(value), query) : headerText(value);
}

/** A header's value as one string: repeated fields joined as RFC 9110 §5.3 combines them. */
export function headerText(value: string | readonly string[]): string {
  return typeof value === 'string' ? value : value.join(', ');
}

/**
 * Picks the listed request headers for a log line, secrets replaced, read as the client wrote
 * them (`clientText`: UTF-8 bytes as text). `undefined` for absent ones.
 */
export function pickHeaders(headers: LoggedHeaders, names: readonly string[], secret: ReadonlySet<string>, query: QueryMode): Record<string, string | undefined> {
  const picked: Record<string, string | undefined> = {};
  for (const name of names) {
    const value = headerValue(headers, name, secret, query);
    picked[name] = value === undefined ? undefined : clientText(value);
  }
  return picked;
}
