import { silentLogger, type Logger } from '@relay/core';
import { compileCookieRules, cookiesOptionNames, rewriteSetCookie, rewriteSetCookies, type CookiesOptions } from './cookie-rules.js';

/** Options of `setCookieRewriter`: those of `cookies()`, and where warnings go. */
export interface SetCookieRewriterOptions extends CookiesOptions {
  /** Told (at `warn`, without the cookie's value) when a `Set-Cookie` cannot be parsed and is kept as it is. Default: silent. */
  logger?: Logger;
}

/**
 * Rewrites one `Set-Cookie` value, or a list of them, by the rules of `cookies()`. Returns the
 * input itself when nothing changed and never modifies it; `undefined` passes through, so a
 * response's header can be given as it is.
 */
export interface SetCookieRewriter {
  (setCookie: string): string;
  (setCookie: string[]): string[];
  (setCookie: readonly string[]): readonly string[];
  (setCookie: undefined): undefined;
  (setCookie: string[] | undefined): string[] | undefined;
  (setCookie: string | string[] | undefined): string | string[] | undefined;
}

const rewriterOptionNames: readonly string[] = [...cookiesOptionNames, 'logger'];

/**
 * The rules of `cookies()` as a plain, synchronous function, for proxies that are not a relay
 * (an http-proxy-middleware `on.proxyRes` hook, a Fastify `rewriteHeaders`, an edge function).
 * Options are checked once, here, with the errors `cookies()` raises; a function rule that throws
 * or returns an invalid value makes the rewriter throw a `RelayError` with code `ERR_INTERNAL`.
 *
 * @example
 * const rewrite = setCookieRewriter({ rewriteDomain: () => '', rewritePath: { '/': '/auth' } });
 * rewrite('sid=1; Domain=auth.internal; Path=/; HttpOnly'); // 'sid=1; Path=/auth; HttpOnly'
 * proxyRes.headers['set-cookie'] = rewrite(proxyRes.headers['set-cookie']);
 */
export function setCookieRewriter(options: SetCookieRewriterOptions = {}): SetCookieRewriter {
  const rules = compileCookieRules(options, rewriterOptionNames, 'setCookieRewriter');
  const logger = options.logger ?? silentLogger;
  if (typeof (logger as Partial<Logger> | null)?.warn !== 'function') throw new TypeError('cookies: logger must be a pino-style logger with a warn method');
  function rewriteSetCookieHeader(setCookie: string | readonly string[] | undefined): string | readonly string[] | undefined {
    if (setCookie === undefined) return undefined;
    if (typeof setCookie === 'string') return rewriteSetCookie(setCookie, 0, rules, logger);
    return rewriteSetCookies(setCookie, rules, logger);
  }
  return rewriteSetCookieHeader as SetCookieRewriter;
}
