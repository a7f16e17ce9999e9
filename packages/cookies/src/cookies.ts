import type { ProxyRequest, ProxyResponse, Stage } from '@relay/core';
import { compileCookieRules, cookiesOptionNames, rewriteSetCookies, type CookiesOptions } from './cookie-rules.js';

/**
 * Rewrites the `Set-Cookie` headers of responses: `Domain`, `Path`, `Secure` and `SameSite`.
 * Each cookie is parsed with tough-cookie to check it, then only the attributes asked for are
 * edited in the original text: every other byte (quoted values, `Domain = x` spacing, `Expires`
 * dates, unknown attributes) is kept, and every cookie stays its own header, in order. A cookie
 * tough-cookie cannot parse is passed on unchanged with a warning in the log. The same rules
 * without a relay: `setCookieRewriter`.
 *
 * @example
 * createRelay({
 *   targetBaseUrl: 'http://auth:8000',
 *   mountPath: '/auth',
 *   stages: [cookies({ rewriteDomain: () => '', rewritePath: { '/': '/auth' } })],
 * });
 * // upstream: Set-Cookie: sid=1; Domain=auth.internal; Path=/; HttpOnly
 * // client:   Set-Cookie: sid=1; Path=/auth; HttpOnly
 */
export function cookies(options: CookiesOptions = {}): Stage {
  const rules = compileCookieRules(options, cookiesOptionNames, 'cookies');
  return {
    name: 'cookies',
    wrap(next, context) {
      const logger = context.logger;
      return async function cookiesStage(request: ProxyRequest): Promise<ProxyResponse> {
        const response = await next(request);
        const setCookie = response.headers['set-cookie'];
        if (setCookie === undefined) return response;
        try {
          const rewritten = rewriteSetCookies(typeof setCookie === 'string' ? [setCookie] : setCookie, rules, logger);
          if (rewritten !== setCookie) response.headers['set-cookie'] = rewritten as string[];
        } catch (error) {
          // The client gets a 500 instead: release the upstream connection now.
          response.body?.destroy();
          throw error;
        }
        return response;
      };
    },
  };
}
