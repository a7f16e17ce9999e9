import { RelayError, type Handler, type ProxyRequest, type ProxyResponse, type Stage, type StageContext } from '@relay/core';
import { encodeUnsendable, normalizePath } from './path-encoding.js';
import { routingParts, type UpstreamPath } from './upstream-path.js';

/**
 * A rewrite function: the path under the target's base (no query, percent-encoding normalised:
 * `/%61pi` comes in as `/api`, `/a|b` as `/a%7Cb`) in, the new one out.
 */
export type RewriteFunction = (path: string, request: ProxyRequest) => string | Promise<string>;

/**
 * Rewrite rules, tried in order, the first that matches wins: an object of path prefixes
 * (`{ '/api/v1': '/v1' }`, matched at a segment boundary, the rest kept), or pairs
 * (a `Map` or an array) whose key is a prefix string or a `RegExp` and whose value is the
 * replacement (`$1`… for a RegExp's groups, as `String.prototype.replace` reads it).
 */
export type RewriteRules = Readonly<Record<string, string>> | Iterable<readonly [string | RegExp, string]>;

/** One compiled rule: returns the rewritten path or `null` when it does not match. */
type Rule = (path: string) => string | null;

/**
 * A stage that rewrites the upstream path, the way nginx's `rewrite`, Envoy's
 * `prefix_rewrite`/`regex_rewrite` and http-proxy-middleware's `pathRewrite` do. It sees and
 * returns the path under the target's base path (what the client asked for after the mount, under
 * the target `router()` chose if it ran first), without the query, with escapes of unreserved
 * characters decoded, hex in upper case (`/%61pi` is `/api`) and characters a URI cannot carry
 * raw encoded (`/a|b` is `/a%7Cb`), so a rule cannot be stepped around with an escape the upstream
 * decodes; a prefix may be written decoded (`/café` takes `/caf%C3%A9`). A path no rule changes is
 * forwarded as sent. The result goes back under the base path, its raw spaces and non-ASCII
 * letters percent-encoded, the query is kept byte for byte, and the new path is checked as
 * a client's is: a rewrite that produces `..` (raw or encoded), a leading `//` or `/\`, or an
 * encoded separator hiding a dot segment is refused with 400 (`ERR_BAD_PATH`) and logged, and
 * nothing is sent upstream. A result that is not a string starting with `/`, or contains `?` or
 * `#`, and a function that throws, answer 500 (`ERR_INTERNAL`) with a log line.
 *
 * @example
 * createRelay({
 *   targetBaseUrl: 'http://users:8000',
 *   stages: [rewritePath({ '/api/v1': '/v1' }), rewritePath([[/^\/u\/(\d+)$/, '/users/$1']])],
 * });
 * // GET /api/v1/users?id=7 → GET /v1/users?id=7; GET /u/42 → GET /users/42
 */
export function rewritePath(rules: RewriteRules | RewriteFunction): Stage {
  const rewrite = typeof rules === 'function' ? rules : compileRules(rules);
  return {
    name: 'rewritePath',
    wrap(next: Handler, context: StageContext): Handler {
      return function rewritePathStage(request: ProxyRequest): Promise<ProxyResponse> {
        const parts = routingParts(request, context);
        let result: string | Promise<string>;
        try {
          result = rewrite(parts.path, request);
        } catch (error) {
          return Promise.reject(rewriteFailed(context, request, error));
        }
        if (typeof result === 'string') return forward(next, context, request, parts, result);
        return Promise.resolve(result).then(
          (path) => forward(next, context, request, parts, path),
          (error: unknown) => Promise.reject(rewriteFailed(context, request, error)),
        );
      };
    },
  };
}

function forward(next: Handler, context: StageContext, request: ProxyRequest, parts: UpstreamPath, path: unknown): Promise<ProxyResponse> {
  if (path === parts.path) return next(request);
  if (typeof path !== 'string' || path.charCodeAt(0) !== 47 /* / */ || /[?#]/.test(path)) {
    return Promise.reject(rewriteFailed(context, request, new Error(`the rewrite returned ${describe(path)}: it must be a path starting with "/" without "?" or "#"`)));
  }
  const second = path.charCodeAt(1);
  if (second === 47 || second === 92 /* \ */) {
    // The relay checks the joined path, where "/base//host" is harmless; a client's path is
    // checked before the join, where a leading "//" names another host: refuse it the same way.
    context.logger.warn({ method: request.method, path: path.slice(0, 256), code: 'ERR_BAD_PATH' }, 'rewritePath produced a path with a leading "//": refused');
    return Promise.reject(new RelayError('ERR_BAD_PATH', 'unsafe request path (leading slash or backslash) after rewritePath'));
  }
  // A raw space or non-ASCII letter (a replacement written `/café`) goes upstream as its UTF-8 escapes.
  return next({ ...request, path: parts.base + encodeUnsendable(path) + parts.query });
}

function rewriteFailed(context: StageContext, request: ProxyRequest, error: unknown): RelayError {
  const message = error instanceof Error ? error.message : String(error);
  context.logger.error({ method: request.method, error: message }, 'rewritePath failed: answered 500');
  return new RelayError('ERR_INTERNAL', `rewritePath failed: ${message}`, { cause: error });
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : typeof value;
}

/** Compiles rules once, at startup: a list tried in order. */
function compileRules(rules: RewriteRules): RewriteFunction {
  if (rules === null || typeof rules !== 'object') throw new TypeError('rewritePath(rules) needs an object of prefixes, a Map or array of [prefix | RegExp, replacement] pairs, or a function');
  const pairs = Symbol.iterator in rules ? Array.from(rules as Iterable<readonly [string | RegExp, string]>) : Object.entries(rules);
  if (pairs.length === 0) throw new TypeError('rewritePath(rules) needs at least one rule');
  const compiled = pairs.map((pair, index) => compileRule(pair, index));
  return function applyRules(path: string): string {
    for (const rule of compiled) {
      const result = rule(path);
      if (result !== null) return result;
    }
    return path;
  };
}

function compileRule(pair: readonly [string | RegExp, string], index: number): Rule {
  if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`rewritePath rule ${index} must be a [prefix | RegExp, replacement] pair`);
  const [pattern, replacement] = pair;
  if (typeof replacement !== 'string') throw new TypeError(`rewritePath rule ${index}: the replacement must be a string, got ${typeof replacement}`);
  if (pattern instanceof RegExp) return regexRule(pattern, replacement);
  if (typeof pattern !== 'string' || pattern.charCodeAt(0) !== 47) throw new TypeError(`rewritePath rule ${index}: the pattern must be a RegExp or a prefix starting with "/", got ${describe(pattern)}`);
  if (replacement !== '' && replacement.charCodeAt(0) !== 47) throw new TypeError(`rewritePath rule ${index}: the replacement of a prefix must start with "/" (or be ""), got ${describe(replacement)}`);
  // Normalised as the paths it is matched against are: a rule written `/caf%c3%a9` or `/café` takes `/caf%C3%A9`.
  return prefixRule(normalizePath(pattern), replacement);
}

/** A RegExp rule; a global or sticky flag would make `test` stateful across requests, so they are dropped. */
function regexRule(pattern: RegExp, replacement: string): Rule {
  const regex = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
  return (path) => (regex.test(path) ? path.replace(regex, replacement) : null);
}

/** A prefix rule at a segment boundary: `/api` rewrites `/api` and `/api/x`, never `/apix`. */
function prefixRule(prefix: string, replacement: string): Rule {
  const from = prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  const to = replacement.length > 1 && replacement.endsWith('/') ? replacement.slice(0, -1) : replacement;
  return function prefixRewrite(path) {
    if (from === '/') return to === '/' ? path : to + (path === '/' ? '' : path);
    if (!path.startsWith(from)) return null;
    const rest = path.slice(from.length);
    if (rest !== '' && rest.charCodeAt(0) !== 47) return null;
    const joined = to === '/' ? rest : to + rest;
    return joined === '' ? '/' : joined;
  };
}
