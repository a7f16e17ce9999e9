import { assertKnownKeys, type HeaderValue, type ProxyRequest, type StageContext } from '@relay/core';
import { globToRegExp } from './glob.js';
import { normalizeGlob } from './path-encoding.js';
import { routingPath } from './upstream-path.js';

/** What a request must match; every condition given must hold (AND), each list is an OR. */
export interface Conditions {
  /** Methods, e.g. `'GET'` or `['GET', 'HEAD']` (compared in upper case). */
  method?: string | readonly string[];
  /**
   * Hosts the client asked for (its `Host`, port and trailing dot ignored, case-insensitive):
   * `'api.example.com'`, or `'*.example.com'` for any name below it (not `example.com` itself), as
   * nginx's and Envoy's leading wildcards match; an IPv6 address in brackets (`'[::1]'`). A pattern's
   * trailing dot is dropped too; a pattern with a port or a character no host name has throws a
   * TypeError when built, since it could never match.
   */
  host?: string | readonly string[];
  /**
   * Request headers by name: a string must equal one of the header's values, a RegExp match one,
   * `true` means present and `false` absent. `host` (or `:authority`) is the client's `Host` as
   * sent, port included, not the upstream's that the stages see in `request.headers.host`; `host`
   * above matches the name alone.
   */
  header?: Readonly<Record<string, string | RegExp | boolean>>;
  /**
   * Path globs (see `globToRegExp`): `'/api/*\/items/**'`, matched against the path under the
   * target's base (what the client asked for under the mount), without the query, its
   * percent-encoding normalised (`/%61dmin` is `/admin`; the glob is normalised the same way, so
   * `/café/**` matches the `/caf%C3%A9/…` clients send).
   */
  path?: string | readonly string[];
}

/** A compiled `Conditions`: whether one request matches. */
export type Matcher = (request: ProxyRequest, context: StageContext) => boolean;

const conditionKeys = ['method', 'host', 'header', 'path'] as const;

/**
 * Compiles conditions once, at startup. `where` names the caller in errors.
 *
 * @example
 * const matches = compileConditions({ method: 'GET', path: '/api/**' }, 'when');
 * matches(request, context); // true for GET /api/users
 */
export function compileConditions(conditions: Conditions, where: string): Matcher {
  if (conditions === null || typeof conditions !== 'object') throw new TypeError(`${where}: conditions must be an object such as { method: 'GET', path: '/api/**' }`);
  assertKnownKeys(conditions, conditionKeys, where);
  const checks: Matcher[] = [];
  if (conditions.method !== undefined) checks.push(methodMatcher(list(conditions.method, `${where}: method`), `${where}: method`));
  if (conditions.host !== undefined) checks.push(hostMatcher(list(conditions.host, `${where}: host`), `${where}: host`));
  if (conditions.header !== undefined) checks.push(headerMatcher(conditions.header, where));
  if (conditions.path !== undefined) checks.push(pathMatcher(list(conditions.path, `${where}: path`)));
  if (checks.length === 1) return checks[0]!;
  return function matchAll(request, context) {
    for (const check of checks) if (!check(request, context)) return false;
    return true;
  };
}

function list(value: string | readonly string[], option: string): readonly string[] {
  const values = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(values) || values.length === 0 || values.some((item) => typeof item !== 'string' || item === '')) {
    throw new TypeError(`${option} must be a non-empty string or a non-empty list of them`);
  }
  return values;
}

/** RFC 9110 §5.6.2: methods and field names are tokens; anything else could never match. */
const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function methodMatcher(methods: readonly string[], where: string): Matcher {
  for (const method of methods) {
    if (typeof method !== 'string' || !token.test(method)) throw new TypeError(`${where}: "${String(method)}" is not a method (a token such as GET)`);
  }
  const set = new Set(methods.map((method) => method.toUpperCase()));
  return (request) => set.has(request.method);
}

function hostMatcher(hosts: readonly string[], where: string): Matcher {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const host of hosts) {
    const name = hostPattern(host, where);
    if (name.startsWith('*.')) suffixes.push(name.slice(1));
    else exact.add(name);
  }
  return function matchHost(request) {
    const host = hostName(request.client.host);
    if (exact.has(host)) return true;
    for (const suffix of suffixes) if (host.length > suffix.length && host.endsWith(suffix)) return true;
    return false;
  };
}

/** Labels of letters, digits, `-` and `_` (used in some internal names), an optional leading `*.`. */
const hostNamePattern = /^(?:\*\.)?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
/** An IPv6 literal as it appears in `Host`: in brackets. */
const ipv6Pattern = /^\[[0-9a-f:.]+\]$/;

/**
 * A `host` pattern normalised as the client's `Host` is (`hostName`): lowercase, without a trailing
 * dot. A port or anything that is not a host name is refused: the client's port is not compared, so
 * such a pattern could never match.
 */
function hostPattern(host: string, where: string): string {
  const name = host.endsWith('.') ? host.slice(0, -1).toLowerCase() : host.toLowerCase();
  if (hostNamePattern.test(name) || ipv6Pattern.test(name)) return name;
  const colons = name.split(':').length - 1;
  if (colons > 1 && !name.startsWith('[')) throw new TypeError(`${where} "${host}": write an IPv6 address in brackets, as in Host: "[::1]"`);
  if (colons > 0 && /:\d*$/.test(name)) throw new TypeError(`${where} "${host}": a port is not matched (the client's port is ignored); write the name alone`);
  if (name.includes('*')) throw new TypeError(`${where} "${host}": a wildcard is only allowed as a leading "*." label`);
  throw new TypeError(`${where} "${host}" is not a host name (labels of letters, digits, "-" and "_" separated by dots; an international name in its xn-- form)`);
}

/** The name of a `Host` value: lowercase, without port or trailing dot; IPv6 literals keep their brackets. */
function hostName(host: string): string {
  let end = host.length;
  const colon = host.lastIndexOf(':');
  if (colon !== -1 && host.indexOf(']') < colon) end = colon;
  if (end > 0 && host.charCodeAt(end - 1) === 46 /* . */) end--;
  return host.slice(0, end).toLowerCase();
}

function headerMatcher(rules: Readonly<Record<string, string | RegExp | boolean>>, where: string): Matcher {
  if (rules === null || typeof rules !== 'object') throw new TypeError(`${where}: header must be an object of header names to a string, RegExp or boolean`);
  const checks = Object.entries(rules).map(([name, expected]) => {
    const lower = name.toLowerCase();
    const clientHost = lower === 'host' || lower === ':authority';
    if (!clientHost && !token.test(name)) throw new TypeError(`${where}: header name "${name}" is not a field name (a token such as x-api-key)`);
    if (typeof expected !== 'string' && typeof expected !== 'boolean' && !(expected instanceof RegExp)) {
      throw new TypeError(`${where}: header["${name}"] must be a string, a RegExp or a boolean`);
    }
    return { name: lower, read: clientHost ? clientHostValue : headerValue, test: valueTest(expected) };
  });
  if (checks.length === 0) throw new TypeError(`${where}: header must name at least one header`);
  return function matchHeaders(request) {
    for (const check of checks) if (!check.test(check.read(request, check.name))) return false;
    return true;
  };
}

function headerValue(request: ProxyRequest, name: string): HeaderValue | undefined {
  return request.headers[name];
}

/**
 * `Host` (and HTTP/2's `:authority`) as the client sent it, as the `host` condition reads it: by
 * the time stages run, `request.headers.host` is the upstream's (core sets it to the target), so a
 * rule on it would never see the client's name and would match the upstream's address every time.
 */
function clientHostValue(request: ProxyRequest): string | undefined {
  return request.client.host === '' ? undefined : request.client.host;
}

function valueTest(expected: string | RegExp | boolean): (value: HeaderValue | undefined) => boolean {
  if (typeof expected === 'boolean') return (value) => (value !== undefined) === expected;
  const regex = expected instanceof RegExp ? new RegExp(expected.source, expected.flags.replace(/[gy]/g, '')) : null;
  const matches = regex === null ? (value: string) => value === expected : (value: string) => regex.test(value);
  return (value) => (value === undefined ? false : typeof value === 'string' ? matches(value) : value.some(matches));
}

function pathMatcher(globs: readonly string[]): Matcher {
  const regexes = globs.map((glob) => {
    if (glob.charCodeAt(0) !== 47) throw new TypeError(`path glob "${glob}" must start with "/"`);
    // Normalised as the request's path is, so a glob written `/%7Euser/**`, `/caf%c3%a9` or `/café` matches.
    return globToRegExp(normalizeGlob(glob));
  });
  return function matchPath(request, context) {
    const path = routingPath(request, context);
    for (const regex of regexes) if (regex.test(path)) return true;
    return false;
  };
}
