import { assertKnownKeys, type Logger, type ProxyRequest, type ProxyResponse, type Stage } from '@relay/core';
import { Cookie } from 'tough-cookie';
import { compileAttributeRewrite, domainKind, pathKind, type AttributeDecision, type AttributeRewrite } from './attribute-rewrite.js';
import { SetCookieLine } from './set-cookie-line.js';

/** A `SameSite` value, in any case. */
export type SameSite = 'Strict' | 'Lax' | 'None' | 'strict' | 'lax' | 'none';

/** Options of `cookies()`. Attributes not named here are never changed. */
export interface CookiesOptions {
  /**
   * The `Domain` attribute: a function of the original value (`undefined` when absent) returning
   * `''` to remove it, a string to set it, `null`/`undefined` to keep it; or a map such as
   * `{ 'auth.internal': 'example.com', '*': '' }` (keys compare case-insensitively, without a
   * leading dot; `'*'` matches every other cookie that has a Domain). Default: keep.
   */
  rewriteDomain?: AttributeRewrite;
  /** The `Path` attribute, likewise (map keys compare exactly). Default: keep. */
  rewritePath?: AttributeRewrite;
  /** `false` strips the `Secure` flag, `true` adds it where missing. Default: keep. */
  secure?: boolean;
  /** Sets `SameSite` on every cookie, replacing the upstream's. Default: keep. */
  sameSite?: SameSite;
}

const optionNames = ['rewriteDomain', 'rewritePath', 'secure', 'sameSite'];
const sameSiteSpelling: Record<string, string> = { strict: 'Strict', lax: 'Lax', none: 'None' };

/** The checked options, compiled once. */
interface CookieRules {
  readonly domain: AttributeDecision | null;
  readonly path: AttributeDecision | null;
  readonly secure: boolean | undefined;
  readonly sameSite: string | undefined;
  readonly logger: Logger;
}

/**
 * Rewrites the `Set-Cookie` headers of responses: `Domain`, `Path`, `Secure` and `SameSite`.
 * Each cookie is parsed with tough-cookie to check it, then only the attributes asked for are
 * edited in the original text: every other byte (quoted values, `Domain = x` spacing, `Expires`
 * dates, unknown attributes) is kept, and every cookie stays its own header, in order. A cookie
 * tough-cookie cannot parse is passed on unchanged with a warning in the log.
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
  if (options === null || typeof options !== 'object') throw new TypeError('cookies(options) needs an options object');
  assertKnownKeys(options, optionNames, 'cookies');
  const domain = compileAttributeRewrite(options.rewriteDomain, domainKind);
  const path = compileAttributeRewrite(options.rewritePath, pathKind);
  if (options.secure !== undefined && typeof options.secure !== 'boolean') {
    throw new TypeError(`cookies: secure must be a boolean, got ${typeof options.secure}`);
  }
  let sameSite: string | undefined;
  if (options.sameSite !== undefined) {
    if (typeof options.sameSite !== 'string') throw new TypeError(`cookies: sameSite must be "Strict", "Lax" or "None", got ${typeof options.sameSite}`);
    sameSite = sameSiteSpelling[options.sameSite.toLowerCase()];
    if (sameSite === undefined) throw new RangeError(`cookies: sameSite must be "Strict", "Lax" or "None", got ${JSON.stringify(options.sameSite)}`);
  }
  if (sameSite === 'None' && options.secure === false) {
    throw new TypeError('cookies: sameSite "None" with secure: false makes cookies browsers reject (SameSite=None requires Secure)');
  }
  const secure = options.secure;
  return {
    name: 'cookies',
    wrap(next, context) {
      const rules: CookieRules = { domain, path, secure, sameSite, logger: context.logger };
      return async function cookiesStage(request: ProxyRequest): Promise<ProxyResponse> {
        const response = await next(request);
        const setCookie = response.headers['set-cookie'];
        if (setCookie === undefined) return response;
        try {
          const rewritten = rewriteSetCookies(typeof setCookie === 'string' ? [setCookie] : setCookie, rules);
          if (rewritten !== setCookie) response.headers['set-cookie'] = rewritten;
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

/** The rewritten list, or `lines` itself when no cookie changed (the input is never modified). */
function rewriteSetCookies(lines: string[], rules: CookieRules): string[] {
  let output: string[] | null = null;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const rewritten = rewriteSetCookie(line, index, rules);
    if (rewritten === line) continue;
    output ??= lines.slice();
    output[index] = rewritten;
  }
  return output ?? lines;
}

function rewriteSetCookie(text: string, index: number, rules: CookieRules): string {
  const parsed = Cookie.parse(text, { loose: true });
  if (parsed === undefined) {
    rules.logger.warn({ stage: 'cookies', index }, 'cookies: a Set-Cookie header could not be parsed and was passed on unchanged');
    return text;
  }
  const name = parsed.key;
  const line = new SetCookieLine(text);
  if (rules.domain !== null) applyDecision(line, 'domain', 'Domain', rules.domain(line.value('domain'), name));
  if (rules.path !== null) applyDecision(line, 'path', 'Path', rules.path(line.value('path'), name));
  if (rules.secure === false) line.remove('secure');
  else if (rules.secure === true) line.flag('secure', 'Secure');
  if (rules.sameSite !== undefined) line.set('samesite', 'SameSite', rules.sameSite);
  return line.toString();
}

function applyDecision(line: SetCookieLine, name: string, spelling: string, decision: string | undefined): void {
  if (decision === undefined) return;
  if (decision === '') line.remove(name);
  else line.set(name, spelling, decision);
}
