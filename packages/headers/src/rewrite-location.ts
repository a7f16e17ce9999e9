import { assertKnownKeys, type ProxyRequest, type ProxyResponse, type Stage, type Target } from '@relay/core';
import { normalizePathOption, resolveTarget } from '@relay/core/transport';
import { checkCallFacts } from './call-facts.js';
import { describe } from './header-syntax.js';

/** Options of `rewriteLocation()`. */
export interface RewriteLocationOptions {
  /**
   * The public origin rewritten locations point at, e.g. `https://api.example.com`. Default: the
   * client's scheme and `Host` (set it behind a load balancer that terminates TLS).
   */
  publicOrigin?: string;
  /** Also map path-absolute locations (`/login`) from the upstream prefix to the mount path. Default `true`. */
  relative?: boolean;
}

/** The headers rewritten, on every response that has them. */
const locationHeaders = ['location', 'content-location'] as const;

const absoluteUrl = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#\\]*)([\s\S]*)$/;
/** A `Host` value safe to build a URL from: a name or IP literal and an optional port. */
const hostPattern = /^(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** What a location is compared with: the upstream, read once from the stage context. */
interface UpstreamView {
  readonly scheme: string;
  /** Lowercase authorities naming the upstream: `host` and `host:port` when the port is the default. */
  readonly authorities: ReadonlySet<string>;
  readonly basePath: string;
  readonly publicOrigin: string | null;
  readonly relative: boolean;
}

/**
 * Rewrites `Location`, `Content-Location` and the URL of `Refresh` that point at the upstream so they point at the
 * relay: an absolute URL on the upstream origin under its prefix becomes the public origin plus
 * the mount path; a path-absolute one (`/login`) gets the mount path; anything else (another
 * origin, a path outside the prefix, a relative path) is left alone. Query and fragment are kept
 * byte for byte. Applies to every response, so 201 and every redirect (301, 302, 303, 307, 308)
 * are covered, like nginx's `proxy_redirect default`.
 *
 * @example
 * createRelay({ targetBaseUrl: 'http://auth:8000', upstreamPrefix: '/api', mountPath: '/auth', stages: [rewriteLocation()] });
 * // upstream: 302 Location: http://auth:8000/api/dashboard?tab=1
 * // client:   302 Location: http://gw.example/auth/dashboard?tab=1
 */
export function rewriteLocation(options: RewriteLocationOptions = {}): Stage {
  const { publicOrigin, relative } = readLocationOptions(options, stageOptionNames, 'rewriteLocation');
  return {
    name: 'rewrite-location',
    wrap(next, context) {
      const view = upstreamView(context.target, publicOrigin, relative);
      const chosenViews = new WeakMap<Target, UpstreamView>();
      /** The view of the upstream that answered: a balancer's member or a router's choice names its own address. */
      const viewOf = (chosen: Target | undefined): UpstreamView => {
        if (chosen === undefined || chosen === context.target) return view;
        let chosenView = chosenViews.get(chosen);
        // A router maps the path onto its target's base path; a balancer's members share the relay's.
        if (chosenView === undefined) chosenViews.set(chosen, (chosenView = { ...upstreamView(chosen, publicOrigin, relative), basePath: chosen.basePath === '' ? view.basePath : chosen.basePath }));
        return chosenView;
      };
      return async function rewriteLocationStage(request: ProxyRequest): Promise<ProxyResponse> {
        const response = await next(request);
        const headers = response.headers;
        // Most responses have none of these: no view is looked up for them.
        if (hasLocationHeaders(headers)) response.headers = rewriteLocationHeaders(headers, viewOf(response.target ?? request.target), request.client);
        return response;
      };
    },
  };
}

const stageOptionNames: readonly string[] = ['publicOrigin', 'relative'];
const rewriterOptionNames: readonly string[] = ['targetBaseUrl', 'upstreamPrefix', 'mountPath', ...stageOptionNames];

/** Options of `locationRewriter`: the upstream and mount path a relay would have, and those of `rewriteLocation()`. */
export interface LocationRewriterOptions extends RewriteLocationOptions {
  /** The upstream the proxy forwards to, as `createRelay`'s `targetBaseUrl` (`http://auth:8000`, a path allowed). */
  targetBaseUrl: string | URL;
  /** The upstream path prefix, as `createRelay`'s `upstreamPrefix`. Default `'/'`. */
  upstreamPrefix?: string;
  /** Where the proxy is mounted for its clients (`'/auth'`), as `createRelay`'s `mountPath`. Default: the root. */
  mountPath?: string;
}

/** The client of one response, for the public origin when `publicOrigin` is not set. */
export interface LocationClient {
  /** The scheme the client used. */
  readonly scheme: 'http' | 'https';
  /** The `Host` the client sent (a value that is not a plain host[:port] is not used). */
  readonly host: string;
}

/**
 * Headers as a plain object with lowercase names, such as Node's `IncomingHttpHeaders`
 * (`proxyRes.headers`) or what `headerRules(...).response` returns.
 */
export type LocationHeaders = Readonly<Record<string, string | readonly string[] | number | undefined>>;

/**
 * Rewrites one `Location` (or `Content-Location`) value. Without `publicOrigin`, an absolute
 * location is given the client's scheme and `Host` when `client` is passed, else it becomes
 * path-absolute (`/auth/dashboard`), which browsers resolve against the page's own origin.
 */
export interface LocationRewriter {
  (location: string, client?: LocationClient): string;
  /**
   * Rewrites every header `rewriteLocation()` rewrites, in a record with lowercase names:
   * `Location`, `Content-Location` and the URL of `Refresh`. Returns the record itself when
   * nothing changed, else a shallow copy with the new values; never modifies its input.
   *
   * @example
   * proxyRes.headers = rewrite.headers(proxyRes.headers, { scheme: 'https', host: req.headers.host ?? '' });
   */
  headers<T extends LocationHeaders>(headers: T, client?: LocationClient): T;
}

const clientNames: readonly string[] = ['scheme', 'host'];

/**
 * The rules of `rewriteLocation()` as a plain synchronous function, for proxies that are not a
 * relay: a location on the upstream under its prefix is mapped to the mount path (and the public
 * origin), anything else is returned as it is. `rewrite.headers(record, client)` applies them to
 * a whole response's headers as the stage does (`Location`, `Content-Location`, `Refresh`).
 * Options are checked here; TypeError naming the option.
 *
 * @example
 * const rewrite = locationRewriter({ targetBaseUrl: 'http://auth:8000', upstreamPrefix: '/api', mountPath: '/auth' });
 * rewrite('http://auth:8000/api/dashboard?tab=1', { scheme: 'https', host: 'gw.example' }); // 'https://gw.example/auth/dashboard?tab=1'
 * rewrite('/api/login'); // '/auth/login'
 * rewrite.headers({ location: '/api/items/7', refresh: '0; url=/api/items' }); // { location: '/auth/items/7', refresh: '0; url=/auth/items' }
 */
export function locationRewriter(options: LocationRewriterOptions): LocationRewriter {
  const { publicOrigin, relative } = readLocationOptions(options, rewriterOptionNames, 'locationRewriter');
  const view = upstreamView(resolveTarget(options.targetBaseUrl, options.upstreamPrefix), publicOrigin, relative);
  const mountPath = normalizePathOption(options.mountPath, 'mountPath');
  function rewriteOneLocation(location: string, client?: LocationClient): string {
    if (typeof location !== 'string') throw new TypeError(`locationRewriter: the location must be a string, got ${describe(location)}`);
    return rewriteLocationValue(location, view, clientView(mountPath, client));
  }
  function rewriteLocationHeadersOf<T extends LocationHeaders>(headers: T, client?: LocationClient): T {
    if (headers === null || typeof headers !== 'object') throw new TypeError(`locationRewriter: headers must be a header record, got ${describe(headers)}`);
    return rewriteLocationHeaders(headers, view, clientView(mountPath, client));
  }
  return Object.assign(rewriteOneLocation, { headers: rewriteLocationHeadersOf });
}

/** The client of a plain call as the rules read it: `http` and no usable `Host` when not given. */
function clientView(mountPath: string, client: LocationClient | undefined): ClientView {
  if (client === undefined) return { mountPath, scheme: 'http', host: '' };
  checkCallFacts(client, clientNames, 'locationRewriter: client');
  return { mountPath, scheme: client.scheme ?? 'http', host: client.host ?? '' };
}

function readLocationOptions(options: RewriteLocationOptions, known: readonly string[], factory: string): { publicOrigin: string | null; relative: boolean } {
  if (options === null || typeof options !== 'object') throw new TypeError(`${factory}(options) needs an options object`);
  assertKnownKeys(options, known, factory);
  const publicOrigin = options.publicOrigin === undefined ? null : readPublicOrigin(options.publicOrigin);
  if (options.relative !== undefined && typeof options.relative !== 'boolean') {
    throw new TypeError(`${factory}: relative must be a boolean, got ${describe(options.relative)}`);
  }
  return { publicOrigin, relative: options.relative ?? true };
}

/** What a location is mapped with on each response: the client's mount path, scheme and `Host` (a `ClientInfo` has them). */
interface ClientView {
  readonly mountPath: string;
  readonly scheme: string;
  readonly host: string;
}

function readPublicOrigin(value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`rewriteLocation: publicOrigin must be a string such as "https://example.com", got ${describe(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TypeError(`rewriteLocation: publicOrigin must be an absolute URL such as "https://example.com", got ${describe(value)}`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new TypeError(`rewriteLocation: publicOrigin must be an http(s) origin without path, query or credentials, got ${describe(value)}`);
  }
  return url.origin;
}

function upstreamView(target: Target, publicOrigin: string | null, relative: boolean): UpstreamView {
  const host = target.host.toLowerCase();
  const authorities = new Set([host]);
  const hostname = target.hostname.includes(':') ? `[${target.hostname.toLowerCase()}]` : target.hostname.toLowerCase();
  authorities.add(`${hostname}:${target.port}`);
  if ((target.protocol === 'http:' && target.port === 80) || (target.protocol === 'https:' && target.port === 443)) authorities.add(hostname);
  return { scheme: target.protocol.slice(0, -1), authorities, basePath: target.basePath, publicOrigin, relative };
}

/**
 * Rewrites `Location`, `Content-Location` and the URL of `Refresh` in a record with lowercase
 * names: the one loop of the stage and of `locationRewriter(...).headers`. The input is never
 * modified: it is copied at the first change (a rare case: a location on the upstream), and
 * returned as it is when nothing changed.
 */
function rewriteLocationHeaders<T extends LocationHeaders>(headers: T, view: UpstreamView, client: ClientView): T {
  let result = headers as Record<string, unknown>;
  for (const name of locationHeaders) {
    const value = headers[name];
    if (value === undefined || typeof value === 'number') continue;
    const rewritten = typeof value === 'string' ? rewriteLocationValue(value, view, client) : rewriteLocationList(value, view, client);
    if (rewritten === value) continue;
    if (result === headers) result = { ...headers };
    result[name] = rewritten;
  }
  const refresh = headers.refresh;
  if (typeof refresh === 'string') {
    const rewritten = rewriteRefresh(refresh, view, client);
    if (rewritten !== refresh) {
      if (result === headers) result = { ...headers };
      result.refresh = rewritten;
    }
  }
  return result as T;
}

/** Whether a record has any header `rewriteLocationHeaders` rewrites. */
function hasLocationHeaders(headers: LocationHeaders): boolean {
  return headers.location !== undefined || headers['content-location'] !== undefined || headers.refresh !== undefined;
}

/** Each value of a repeated header rewritten; the list itself when none changed. */
function rewriteLocationList(values: readonly string[], view: UpstreamView, client: ClientView): readonly string[] {
  const rewritten = values.map((item) => rewriteLocationValue(item, view, client));
  return rewritten.every((item, index) => item === values[index]) ? values : rewritten;
}

/** `Refresh: 5; url=…` (HTML's refresh syntax): the delay, then a URL, optionally quoted. */
const refreshSyntax = /^(\s*\d+(?:\.\d*)?\s*[;,]\s*url\s*=\s*)(['"]?)(.*?)\2(\s*)$/i;

/** A `Refresh` header's URL rewritten as a `Location` (nginx's `proxy_redirect` covers both); its syntax kept. */
function rewriteRefresh(value: string, view: UpstreamView, client: ClientView): string {
  const match = refreshSyntax.exec(value);
  if (match === null) return value;
  const [, head, quote, url, tail] = match;
  return `${head}${quote}${rewriteLocationValue(url!, view, client)}${quote}${tail}`;
}

/** The public form of one location value, or the value itself when it does not point at the upstream. */
function rewriteLocationValue(value: string, view: UpstreamView, client: ClientView): string {
  if (value.charCodeAt(0) === 47 /* / */ && value.charCodeAt(1) !== 47 && value.charCodeAt(1) !== 92 /* \ */) {
    if (!view.relative) return value;
    const path = publicPath(value, view.basePath, client.mountPath);
    // Never turn a path into a network-path reference (`//evil.example`): leave such a value alone.
    return path === null || isNetworkPath(path) ? value : path;
  }
  let scheme: string;
  let authority: string;
  let rest: string;
  if (value.startsWith('//')) {
    const end = indexOfAny(value, 2);
    scheme = view.scheme;
    authority = value.slice(2, end);
    rest = value.slice(end);
  } else {
    const match = absoluteUrl.exec(value);
    if (match === null) return value;
    scheme = match[1]!.toLowerCase();
    authority = match[2]!;
    rest = match[3]!;
  }
  if (scheme !== view.scheme || !view.authorities.has(authority.toLowerCase())) return value;
  const path = publicPath(rest, view.basePath, client.mountPath);
  if (path === null) return value;
  const origin = view.publicOrigin ?? (hostPattern.test(client.host) ? `${client.scheme}://${client.host}` : null);
  if (origin !== null) return origin + path;
  return isNetworkPath(path) ? value : path;
}

/** The end of the authority in a `//authority/rest` reference. */
function indexOfAny(value: string, from: number): number {
  for (let index = from; index < value.length; index++) {
    const code = value.charCodeAt(index);
    if (code === 47 || code === 63 /* ? */ || code === 35 /* # */ || code === 92) return index;
  }
  return value.length;
}

function isNetworkPath(path: string): boolean {
  const second = path.charCodeAt(1);
  return second === 47 || second === 92;
}

/**
 * Maps an upstream path (with query and fragment) under `basePath` to the public path under
 * `mountPath`, or `null` when it is outside `basePath`.
 */
function publicPath(upstreamPath: string, basePath: string, mountPath: string): string | null {
  let rest = upstreamPath;
  if (basePath !== '') {
    if (!rest.startsWith(basePath)) return null;
    const next = rest.charCodeAt(basePath.length);
    // Only at a segment boundary: /api must not match /apiary.
    if (rest.length > basePath.length && next !== 47 && next !== 63 && next !== 35) return null;
    rest = rest.slice(basePath.length);
  }
  if (rest === '' || rest.charCodeAt(0) !== 47) return (mountPath === '' ? '/' : mountPath) + rest;
  return mountPath + rest;
}
