import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { ResolvedRoute } from './schema.js';

/** A route's match rule, compiled once per config generation. */
export interface RouteMatcher {
  /** The path prefix, `/` for every path. */
  readonly path: string;
  /** Exact hosts, or `null` for any host. */
  readonly hosts: ReadonlySet<string> | null;
  /** Suffixes of `*.example.com` patterns (`.example.com`), matching one more label. */
  readonly wildcards: readonly string[];
  /** Allowed methods, or `null` for any. */
  readonly methods: ReadonlySet<string> | null;
  /** The methods as an `Allow` header value (`''` for any). */
  readonly allow: string;
  /** 2 for an exact host, 1 for wildcards only, 0 for any host: more specific matches are tried first. */
  readonly hostRank: number;
  /** Whether the prefix is stripped before forwarding. */
  readonly stripPrefix: boolean;
}

/**
 * Compiles `match: { path, host, methods }`.
 *
 * @example
 * compileMatcher(route).path; // '/api'
 */
export function compileMatcher(route: ResolvedRoute, patterns: readonly string[] = hostPatterns(route)): RouteMatcher {
  const exact = patterns.filter(isExactHost).map(stripDot);
  const wildcards = patterns.filter(isWildcardHost).map((pattern) => stripDot(pattern.slice(1)));
  const anyHost = patterns.includes('*');
  return {
    path: route.match.path,
    hosts: anyHost ? null : new Set(exact),
    wildcards: anyHost ? [] : wildcards,
    methods: route.match.methods === undefined ? null : new Set(route.match.methods),
    allow: route.match.methods === undefined ? '' : [...new Set(route.match.methods)].join(', '),
    hostRank: anyHost ? 0 : exact.length > 0 ? 2 : 1,
    stripPrefix: route.stripPrefix,
  };
}

/**
 * One matcher per kind of host the route lists (exact, wildcard, any), each ranked by its kind.
 * Precedence goes by how a request's host matched, not by the best host a route lists: a route
 * for `[partner.test, "*.example.com"]` takes `a.example.com` only at wildcard rank, below a route
 * whose exact host is `a.example.com`.
 *
 * @example
 * matchersByHostKind(route).map((matcher) => matcher.hostRank); // [2, 1]
 */
export function matchersByHostKind(route: ResolvedRoute): RouteMatcher[] {
  const patterns = hostPatterns(route);
  const kinds = [patterns.filter(isExactHost), patterns.filter(isWildcardHost), patterns.filter((pattern) => pattern === '*')];
  return kinds.filter((kind) => kind.length > 0).map((kind) => compileMatcher(route, kind));
}

function hostPatterns(route: ResolvedRoute): string[] {
  return route.match.host === undefined ? ['*'] : [route.match.host].flat();
}

function isExactHost(pattern: string): boolean {
  return pattern !== '*' && !pattern.startsWith('*.');
}

function isWildcardHost(pattern: string): boolean {
  return pattern.startsWith('*.');
}

function stripDot(host: string): string {
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * Whether a request target is under `prefix` on a segment boundary: `/api` takes `/api`, `/api/x`
 * and `/api?q`, not `/apix`.
 *
 * @example
 * underPrefix('/api/users?page=2', '/api'); // true
 */
export function underPrefix(target: string, prefix: string): boolean {
  if (prefix === '/') return true;
  if (!target.startsWith(prefix)) return false;
  const next = target.charCodeAt(prefix.length);
  return Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */;
}

/**
 * Whether the request's host is one of the matcher's.
 *
 * @example
 * hostMatches(compileMatcher(route), 'a.example.com');
 */
export function hostMatches(matcher: RouteMatcher, host: string): boolean {
  if (matcher.hosts === null) return true;
  if (matcher.hosts.has(host)) return true;
  for (const suffix of matcher.wildcards) {
    // One label in front of the suffix: `a.example.com`, not `example.com` nor `a.b.example.com`.
    if (host.endsWith(suffix) && host.length > suffix.length && !host.slice(0, -suffix.length).includes('.')) return true;
  }
  return false;
}

/**
 * The request's host name: lowercase, without port or trailing dot; `''` when there is none. An
 * absolute-form target's authority wins over the Host header (RFC 9112 §3.2.2: the server MUST
 * ignore Host then), so a request cannot name one host in its target and route as another. An
 * HTTP/2 request names its host in `:authority` (RFC 9113 §8.3.1), read as core's HTTP/2 front
 * reads it: Host only when `:authority` is absent (core answers 400 when the two differ).
 *
 * @example
 * requestHost(req); // 'api.example.com' for `Host: API.example.com:8080`
 */
export function requestHost(req: IncomingMessage | Http2ServerRequest): string {
  const header = absoluteAuthority(req.url) ?? (req.httpVersionMajor === 2 ? http2Authority(req) : req.headers.host);
  if (header === undefined) return '';
  let host = header;
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']') >>> 0);
  else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  host = host.toLowerCase();
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/** An HTTP/2 request's `:authority`, or its Host header when the client sent none. */
function http2Authority(req: IncomingMessage | Http2ServerRequest): string | undefined {
  const authority = req.headers[':authority'];
  return typeof authority === 'string' ? authority : req.headers.host;
}

/** The host[:port] of an absolute-form target (`http://user@host:8080/x`), without userinfo; `undefined` for origin-form. */
function absoluteAuthority(target: string | undefined): string | undefined {
  if (target === undefined || target.charCodeAt(0) === 47 /* / */) return undefined;
  const match = /^https?:\/\/([^/?#]*)/i.exec(target);
  if (match === null) return undefined;
  const authority = match[1]!;
  return authority.slice(authority.lastIndexOf('@') + 1);
}
