import type { DispatchRoute } from '@relay/core';

const SLASH = 47;

/**
 * Where the path starts in a request target: 0 for origin-form (`/a?b`, or what a framework
 * left of it), after the authority for absolute-form (`http://host/a?b`).
 */
export function pathStart(url: string): number {
  const first = url.charCodeAt(0);
  if (first === SLASH || first === 63 /* ? */ || url.length === 0) return 0;
  const scheme = url.indexOf('://');
  if (scheme === -1) return 0;
  for (let index = scheme + 3; index < url.length; index++) {
    const code = url.charCodeAt(index);
    if (code === SLASH || code === 63) return index;
  }
  return url.length;
}

/** Where the query starts (`?`), or the end of `url`, searching from `from`. */
export function queryStart(url: string, from: number): number {
  const index = url.indexOf('?', from);
  return index === -1 ? url.length : index;
}

/**
 * What a Connect-style framework left of a request after stripping its mount path, as a
 * `DispatchRoute`: the target after the mount (`/login?x=1`; `''` or `?x=1` for the bare
 * mount itself) and the mount the client used (for `X-Forwarded-Prefix`).
 *
 * Express and Connect cut the mount off `req.url` and add a leading `/` when nothing is left;
 * Polka 0.5 leaves `?x=1` for `/auth?x=1`; each keeps the client's target in `req.originalUrl`.
 * The mount is what `originalUrl`'s path has before `url`'s. Returns `null` when the framework
 * matched the mount inside a path segment (Connect serves `/auth.json` under `/auth`): that
 * request is not under the mount path and belongs to the app's next handler. When the app
 * rewrote `req.url` beyond recognition, `url` is forwarded as it stands with `baseUrl` (Express)
 * or nothing as the mount.
 *
 * @example
 * mountedRoute('/login?x=1', '/auth/login?x=1', '/auth'); // { path: '/login?x=1', mountPath: '/auth', … }
 * mountedRoute('/', '/auth', '/auth');                    // { path: '', mountPath: '/auth', … }: the bare mount
 */
export function mountedRoute(url: string, originalUrl: string, baseUrl: unknown): DispatchRoute | null {
  const start = pathStart(url);
  const end = queryStart(url, start);
  const rest = url.slice(start, end);
  const query = url.slice(end);
  const route: DispatchRoute = { path: '', mountPath: '', originalUrl, onError: undefined, body: undefined };
  if (originalUrl === url) {
    route.path = start === 0 ? url : url.slice(start);
    return route;
  }
  const originalStart = pathStart(originalUrl);
  const original = originalUrl.slice(originalStart, queryStart(originalUrl, originalStart));
  if (rest === original) {
    // Nothing stripped: mounted at the root (or the app changed only the query).
    route.path = rest + query;
  } else if (rest === '') {
    // Nothing left of the path: the bare mount.
    route.path = query;
    route.mountPath = original;
  } else if (original.length > rest.length && rest.charCodeAt(0) === SLASH && original.endsWith(rest)) {
    route.path = rest + query;
    route.mountPath = original.slice(0, original.length - rest.length);
  } else if (rest.length === 1 && rest.charCodeAt(0) === SLASH) {
    // The framework added the leading "/" because nothing was left: the bare mount.
    route.path = query;
    route.mountPath = original;
  } else if (isDotSuffix(rest, original)) {
    // Connect matched the mount inside a segment (`/auth` for `/auth.json`): it cuts the mount
    // at a "." and adds a "/", leaving `/.json`. Only that shape is not under the mount; a
    // rewritten URL merely ending like the original (`/legacy-users` → `/users`) is relayed.
    return null;
  } else {
    route.path = rest + query;
    route.mountPath = typeof baseUrl === 'string' ? baseUrl : '';
  }
  return route;
}

/** Whether `rest` is what Connect leaves when it matched a mount ending just before a "." of `original`. */
function isDotSuffix(rest: string, original: string): boolean {
  return rest.charCodeAt(0) === SLASH && rest.charCodeAt(1) === 46 /* . */ && original.endsWith(rest.slice(1));
}

/**
 * Whether `url` is under `mount` (lowercase, no trailing slash, `''` for the root) at a segment
 * boundary: `/chat` matches `/chat`, `/chat/x` and `/chat?x`, not `/chatty`. Case-insensitive,
 * as Express and Connect match mount paths. Returns the index where the mount ends, or -1.
 *
 * @example
 * matchMount('/Chat/room?x', 0, 10, '/chat'); // 5
 * matchMount('/chatty', 0, 7, '/chat');       // -1
 */
export function matchMount(url: string, start: number, end: number, mount: string): number {
  const stop = start + mount.length;
  if (stop > end) return -1;
  for (let index = 0; index < mount.length; index++) {
    let code = url.charCodeAt(start + index);
    if (code >= 65 && code <= 90) code += 32;
    if (code !== mount.charCodeAt(index)) return -1;
  }
  return stop === end || url.charCodeAt(stop) === SLASH ? stop : -1;
}
