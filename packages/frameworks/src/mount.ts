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
 * serves `/api`, `/API/x` and `/api?x`, not `/apix`. The mount the client used is kept for
 * `X-Forwarded-Prefix`; the query stays byte for byte.
 *
 * @example
 * routeUnder('/api/users?id=1', '/api'); // { path: '/users?id=1', mountPath: '/api', originalUrl: '/api/users?id=1' }
 */
export function routeUnder(url: string, prefix: string): DispatchRoute | null {
  const length = prefix.length;
  if (url.length < length) return null;
  for (let index = 0; index < length; index++) {
    let code = url.charCodeAt(index);
    if (code >= 65 && code <= 90) code += 32;
    let expected = prefix.charCodeAt(index);
    if (expected >= 65 && expected <= 90) expected += 32;
    if (code !== expected) return null;
  }
  const next = url.charCodeAt(length);
  if (!(Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */)) return null;
  return { path: url.slice(length), mountPath: url.slice(0, length), originalUrl: url };
}
