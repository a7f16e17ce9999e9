import type { ProxyRequest, StageContext } from '@relay/core';
import { normalizePath } from './path-encoding.js';

/**
 * A request's upstream target split the way routing stages see it: `path` is what follows the
 * target's base path (`targetBaseUrl` path + `upstreamPrefix`), which is what the client asked
 * for under the relay's mount, `'/'` at the least; `base` is the part before it and `query`
 * the query string with its `?`, byte for byte. A path an earlier stage moved outside the base
 * is seen whole, with `base` `''`.
 */
export interface UpstreamPath {
  base: string;
  path: string;
  query: string;
}

/**
 * Splits `request.path` under `basePath`.
 *
 * @example
 * splitUpstreamPath('/base/users?id=1', '/base'); // { base: '/base', path: '/users', query: '?id=1' }
 */
export function splitUpstreamPath(target: string, basePath: string): UpstreamPath {
  const queryStart = target.indexOf('?');
  const pathPart = queryStart === -1 ? target : target.slice(0, queryStart);
  const query = queryStart === -1 ? '' : target.slice(queryStart);
  if (basePath !== '' && pathPart.startsWith(basePath)) {
    const rest = pathPart.slice(basePath.length);
    if (rest === '') return { base: basePath, path: '/', query };
    if (rest.charCodeAt(0) === 47 /* / */) return { base: basePath, path: rest, query };
  }
  return { base: '', path: pathPart, query };
}

/**
 * The path a routing condition or rewrite sees for `request`, split as `splitUpstreamPath` does:
 * under the base path of the target the request goes to (`request.target`, set by `router()` or
 * `balance()`, else the relay's own), with its percent-encoding normalised (`normalizePath`:
 * `/%61dmin` is `/admin`, `%c3%a9` is `%C3%A9`, a raw `|` is `%7C`), as the upstream and nginx read
 * it: a guard by path must not be stepped around with an escape. `base` and `query` stay as sent.
 *
 * @example
 * routingParts({ ...request, path: '/base/%61dmin?id=1' }, context); // { base: '/base', path: '/admin', query: '?id=1' }
 */
export function routingParts(request: ProxyRequest, context: StageContext): UpstreamPath {
  const parts = splitUpstreamPath(request.path, (request.target ?? context.target).basePath);
  // Only pchars and "/": the same string back, nothing built (the common case).
  parts.path = normalizePath(parts.path);
  return parts;
}

/**
 * The normalised path a routing condition matches for `request` (see `routingParts`).
 *
 * @example
 * routingPath({ ...request, path: '/base/users?id=1' }, context); // '/users' when the target's base is /base
 */
export function routingPath(request: ProxyRequest, context: StageContext): string {
  return routingParts(request, context).path;
}
