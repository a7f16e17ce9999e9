import { assertKnownKeys, type ProxyRequest } from '@relay/core';

/** The hash key of a request, or `null` when it has none. */
export type KeyOf = (request: ProxyRequest) => string | null;

const hashKeyNames: readonly string[] = ['header', 'cookie'];
const tokenPattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Compiles `hashKey` once, when the stage is built.
 *
 * @example
 * const keyOf = compileHashKey({ cookie: 'session' });
 */
export function compileHashKey(source: unknown): KeyOf {
  if (source === undefined || source === 'client') return clientKey;
  // `{ heder: 'x-user' }` names "header": the misspelling, not only the shapes expected.
  if (source !== null && typeof source === 'object') assertKnownKeys(source, hashKeyNames, 'balance: hashKey');
  if (source !== null && typeof source === 'object' && Object.keys(source).length === 1) {
    const record = source as Record<string, unknown>;
    if (typeof record.header === 'string' && tokenPattern.test(record.header)) return headerKey(record.header.toLowerCase());
    if (typeof record.cookie === 'string' && tokenPattern.test(record.cookie)) return cookieKey(`${record.cookie}=`);
  }
  throw new TypeError("balance: hashKey must be 'client', { header: name } or { cookie: name }");
}

function clientKey(request: ProxyRequest): string | null {
  return request.client.clientAddress || null;
}

function headerKey(name: string): KeyOf {
  return function headerHashKey(request) {
    const value = request.headers[name];
    if (value === undefined || value.length === 0) return null;
    return typeof value === 'string' ? value : value.join(',');
  };
}

function cookieKey(prefix: string): KeyOf {
  return function cookieHashKey(request) {
    const header = request.headers.cookie;
    if (header === undefined) return null;
    for (const pair of (typeof header === 'string' ? header : header.join('; ')).split(';')) {
      const trimmed = pair.trim();
      if (trimmed.startsWith(prefix)) return trimmed.slice(prefix.length) || null;
    }
    return null;
  };
}
