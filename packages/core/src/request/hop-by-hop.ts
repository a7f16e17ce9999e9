import type { HeaderRecord } from '../types.js';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy and HTTP/2 ones): they describe one
 * connection and never cross a proxy. Names listed in `Connection` are removed as well.
 */
export const hopByHopHeaders: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** The lowercase names listed in the `Connection` headers of a raw header list, or `null`. */
export function connectionListed(rawHeaders: readonly string[]): string[] | null {
  let listed: string[] | null = null;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index]!;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    for (const token of rawHeaders[index + 1]!.split(',')) {
      const trimmed = token.trim().toLowerCase();
      if (trimmed !== '') (listed ??= []).push(trimmed);
    }
  }
  return listed;
}

/**
 * Copies a raw header list (`[name, value, name, value …]`) into a lowercase record, in one
 * pass, leaving out hop-by-hop headers, names listed in `Connection` and names in `skip`.
 * Repeated headers become arrays; `set-cookie` is always an array.
 */
export function copyEndToEndHeaders(
  rawHeaders: readonly string[],
  skip: ReadonlySet<string> | null = null,
): HeaderRecord {
  const listed = connectionListed(rawHeaders);
  const headers: HeaderRecord = {};
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index]!.toLowerCase();
    if (hopByHopHeaders.has(name) || (skip !== null && skip.has(name)) || (listed !== null && listed.includes(name))) continue;
    const value = rawHeaders[index + 1]!;
    const existing = headers[name];
    if (existing === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (typeof existing === 'string') headers[name] = [existing, value];
    else if (Array.isArray(existing)) existing.push(value);
    else inheritedName(headers, name, value);
  }
  return headers;
}

/**
 * A header whose lowercase name is also an `Object.prototype` property, met on the rare path of
 * the copy loops (the value read is neither a string nor an array): header records stay plain
 * objects, since null-prototype ones put V8 in dictionary mode on the hot path. `constructor` is
 * a name like any other and becomes an own key. `__proto__` is dropped: assigning it would set
 * the record's prototype, and an own `__proto__` key is a prototype-pollution hazard for every
 * stage that spreads or merges the record. nginx would forward it, but a header so named has no
 * legitimate use.
 */
export function inheritedName(headers: HeaderRecord, name: string, value: string): void {
  if (name !== '__proto__') headers[name] = value;
}

/**
 * The end-to-end headers of an upstream response: what every transport returns as
 * `ProxyResponse.headers`.
 */
export function responseHeadersFromRaw(rawHeaders: readonly string[]): HeaderRecord {
  return copyEndToEndHeaders(rawHeaders);
}

/**
 * Fields a trailer section must not carry (RFC 9110 §6.5.1): framing, routing, authentication,
 * content description and request modifiers belong in the head, where a recipient acts on them.
 */
const headOnlyFields: ReadonlySet<string> = new Set([
  'authorization',
  'cache-control',
  'content-encoding',
  'content-length',
  'content-range',
  'content-type',
  'cookie',
  'expect',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'max-forwards',
  'range',
  'set-cookie',
]);

/**
 * The trailer fields of a raw trailer list (a request's or a response's) that may cross the
 * relay: end-to-end ones that a trailer section is allowed to carry; `null` when none is left.
 */
export function trailerFieldsFromRaw(rawTrailers: readonly string[]): HeaderRecord | null {
  if (rawTrailers.length === 0) return null;
  const fields = copyEndToEndHeaders(rawTrailers, headOnlyFields);
  for (const _name in fields) return fields;
  return null;
}

/**
 * A shallow copy of a header record (arrays are shared). Use it instead of `{ ...headers }`:
 * under Node 20 a spread copy that is then given new keys costs several microseconds a request.
 */
export function copyHeaders(headers: HeaderRecord): HeaderRecord {
  const copy: HeaderRecord = {};
  for (const name in headers) copy[name] = headers[name];
  return copy;
}
