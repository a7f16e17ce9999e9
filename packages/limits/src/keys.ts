import { createHash } from 'node:crypto';
import { assertKnownKeys, type ProxyRequest } from '@relay/core';
import { normalizeEscapes } from '@relay/core/transport';

/**
 * What a limit counts by:
 * - `'client'`: the client's address as core resolved it (`request.client.clientAddress`: behind a
 *   trusted proxy, the address its `X-Forwarded-For` gives; else the TCP peer); IPv6 addresses by
 *   their /64 prefix, one subscriber's allocation;
 * - `'route'`: one bucket for every request through this stage (the relay's route as a whole);
 * - `'path'`: the upstream path without its query, in the relay's normal form (`/%6Cogin` counts as `/login`);
 * - `{ header: 'x-api-key' }` / `{ cookie: 'session' }`: that value; a request without it is
 *   counted by its client address, so leaving it out is no way around the limit;
 * - a function of the request: its string; `null` or `undefined` exempts the request.
 */
export type KeySource =
  | 'client'
  | 'route'
  | 'path'
  | { readonly header: string }
  | { readonly cookie: string }
  | ((request: ProxyRequest) => string | null | undefined);

/** The key of one request, or `null` when the limit does not apply to it. */
export type KeyOf = (request: ProxyRequest) => string | null;

/** Keys longer than this are hashed: a client's 8 KiB header must not cost 8 KiB of memory per bucket. */
const maxKeyLength = 128;
const keyObjectNames: readonly string[] = ['header', 'cookie'];

/**
 * Compiles a `KeySource` into a function, once, when the stage is built.
 *
 * @example
 * const keyOf = compileKey({ header: 'x-api-key' }, 'rateLimit: key');
 */
export function compileKey(source: unknown, option: string): KeyOf {
  if (source === undefined || source === 'client') return clientKey;
  if (source === 'route') return routeKey;
  if (source === 'path') return pathKey;
  if (typeof source === 'function') return userKey(source as (request: ProxyRequest) => unknown, option);
  if (source !== null && typeof source === 'object') {
    const record = source as Record<string, unknown>;
    // `{ heder: 'x-api-key' }` names "header": the misspelling, not only the shapes expected.
    assertKnownKeys(record, keyObjectNames, option);
    const keys = Object.keys(record);
    if (keys.length === 1 && typeof record.header === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(record.header)) {
      return headerKey(record.header.toLowerCase());
    }
    if (keys.length === 1 && typeof record.cookie === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(record.cookie)) {
      return cookieKey(record.cookie);
    }
  }
  throw new TypeError(`${option} must be 'client', 'route', 'path', { header: name }, { cookie: name } or a function of the request`);
}

/**
 * The key of a client address: the address itself, an IPv4-mapped IPv6 address as IPv4, and any
 * other IPv6 address as its /64 prefix.
 *
 * @example
 * addressKey('2001:db8:1:2:aaaa::1'); // '2001:db8:1:2::/64'
 */
export function addressKey(address: string): string {
  if (!address.includes(':')) return address;
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && lower.includes('.')) return lower.slice(7);
  const bare = lower.split('%')[0]!;
  const [left = '', right] = bare.split('::');
  const head = left === '' ? [] : left.split(':');
  const tail = right === undefined || right === '' ? [] : right.split(':');
  const groups = right === undefined ? head : [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
  return `${groups.slice(0, 4).map((group) => (Number.parseInt(group, 16) || 0).toString(16)).join(':')}::/64`;
}

function clientKey(request: ProxyRequest): string {
  // The address core resolved for this request: the immediate peer unless the relay trusts a proxy in front
  // (`trustProxy`); an untrusted peer's X-Forwarded-For is never read, so it cannot pick its bucket.
  return addressKey(request.client.clientAddress);
}

function routeKey(): string {
  return 'route';
}

/**
 * The path in the relay's normal form (unreserved escapes decoded, hex upper-cased), as routes
 * match it: `/%6Cogin` is `/login` to the upstream, and must not get a bucket of its own.
 */
function pathKey(request: ProxyRequest): string {
  const query = request.path.indexOf('?');
  return bounded(normalizeEscapes(query === -1 ? request.path : request.path.slice(0, query)));
}

function headerKey(name: string): KeyOf {
  return function keyByHeader(request) {
    const value = request.headers[name];
    const first = typeof value === 'string' ? value : value?.[0];
    return first === undefined || first === '' ? `a:${clientKey(request)}` : `h:${bounded(first)}`;
  };
}

function cookieKey(name: string): KeyOf {
  const prefix = `${name}=`;
  return function keyByCookie(request) {
    const header = request.headers.cookie;
    // Several Cookie fields (HTTP/2's cookie crumbs, RFC 9113 §8.2.3, or a repeated HTTP/1.1 line) are one list.
    const value = header === undefined ? null : cookieValue(typeof header === 'string' ? header : header.join('; '), prefix);
    return value === null || value === '' ? `a:${clientKey(request)}` : `c:${bounded(value)}`;
  };
}

function userKey(source: (request: ProxyRequest) => unknown, option: string): KeyOf {
  return function keyByFunction(request) {
    const key = source(request);
    if (key === null || key === undefined) return null;
    if (typeof key !== 'string') throw new TypeError(`${option} returned ${typeof key}, not a string`);
    return `f:${bounded(key)}`;
  };
}

/** The value of the cookie `prefix` (`name=`) in a `Cookie` header, or `null`. */
function cookieValue(header: string, prefix: string): string | null {
  for (const pair of header.split(';')) {
    const trimmed = pair.trim();
    if (trimmed.startsWith(prefix)) return trimmed.slice(prefix.length);
  }
  return null;
}

function bounded(key: string): string {
  return key.length <= maxKeyLength ? key : `#${createHash('sha256').update(key).digest('base64url')}`;
}

/**
 * How a key appears in logs: addresses and paths as they are, header, cookie and function keys
 * (API keys, session ids) as a short hash, never the secret itself.
 */
export function shownKey(key: string): string {
  if (key.startsWith('h:') || key.startsWith('c:') || key.startsWith('f:')) {
    return `${key.slice(0, 2)}sha256:${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
  }
  return key;
}
