import type { DispatchRoute } from '@relay/core';
import { normalizePathOption } from '@relay/core/transport';

/**
 * Normalises a front door's `prefix` option: leading `/`, no trailing `/`, `''` for the root.
 *
 * @example
 * normalizePrefix('/api/', 'relayPlugin: prefix'); // '/api'
 */
export function normalizePrefix(value: unknown, option: string): string {
  return normalizePathOption(value ?? '', option);
}

/**
 * The `DispatchRoute` of a raw request target (`req.url`) under `prefix`, or `null` when the
 * target is not under it. Matched at a segment boundary and case-insensitively, as
 * `routeUpgrades` matches WebSocket upgrades, so HTTP and WebSocket requests agree: `/api`
 * serves `/api`, `/API/x` and `/api?x`, not `/apix`. An absolute-form target
 * (`http://host/api/x`, which RFC 9112 §3.2.2 has servers accept) is matched on its path, as
 * `relay.handle` and `toConnect` match it, and relayed in origin-form. The mount the client used
 * is kept for `X-Forwarded-Prefix`; the query stays byte for byte.
 *
 * @example
 * routeUnder('/api/users?id=1', '/api'); // { path: '/users?id=1', mountPath: '/api', originalUrl: '/api/users?id=1' }
 * routeUnder('http://a/api/users', '/api'); // { path: '/users', mountPath: '/api', originalUrl: 'http://a/api/users' }
 */
export function routeUnder(url: string, prefix: string): DispatchRoute | null {
  const start = pathStart(url);
  const length = prefix.length;
  if (url.length - start < length) return null;
  for (let index = 0; index < length; index++) {
    let code = url.charCodeAt(start + index);
    if (code >= 65 && code <= 90) code += 32;
    let expected = prefix.charCodeAt(index);
    if (expected >= 65 && expected <= 90) expected += 32;
    if (code !== expected) return null;
  }
  const end = start + length;
  const next = url.charCodeAt(end);
  if (!(Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */)) return null;
  // `http://host` and `http://host?x` under the root: an absolute-form's empty path is "/" (RFC 9110 §4.2.3).
  const path = end > 0 && end === start && next !== 47 ? `/${url.slice(end)}` : url.slice(end);
  return { path, mountPath: url.slice(start, end), originalUrl: url };
}

/** Where the path starts: 0 for origin-form, after the authority for absolute-form (`http://host/a?b`). */
function pathStart(url: string): number {
  if (url.charCodeAt(0) === 47 /* / */) return 0;
  const absolute = /^https?:\/\/[^/?#]*/i.exec(url);
  return absolute === null ? 0 : absolute[0].length;
}
