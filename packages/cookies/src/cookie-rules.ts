import { assertKnownKeys, type Logger } from '@relay/core';
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

/** The option names of `cookies()`. */
export const cookiesOptionNames: readonly string[] = ['rewriteDomain', 'rewritePath', 'secure', 'sameSite'];
const sameSiteSpelling: Record<string, string> = { strict: 'Strict', lax: 'Lax', none: 'None' };

/** The checked options, compiled once: what the stage and `setCookieRewriter` both apply. */
export interface CookieRules {
  readonly domain: AttributeDecision | null;
  readonly path: AttributeDecision | null;
  readonly secure: boolean | undefined;
  readonly sameSite: string | undefined;
}

/**
 * Checks the options of `cookies()` (and of `setCookieRewriter`, whose extra keys are `known`)
 * and compiles them. Throws a TypeError or RangeError naming the option.
 *
 * @example
 * const rules = compileCookieRules({ secure: true }, cookiesOptionNames, 'cookies');
 */
export function compileCookieRules(options: CookiesOptions, known: readonly string[], factory: string): CookieRules {
  if (options === null || typeof options !== 'object') throw new TypeError(`${factory}(options) needs an options object`);
  assertKnownKeys(options, known, factory);
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
  return { domain, path, secure: options.secure, sameSite };
}

/**
 * The rewritten list, or `lines` itself when no cookie changed (the input is never modified).
 *
 * @example
 * rewriteSetCookies(['a=1; Domain=x.internal'], rules, silentLogger); // ['a=1'] with rewriteDomain: () => ''
 */
export function rewriteSetCookies(lines: readonly string[], rules: CookieRules, logger: Logger): readonly string[] {
  let output: string[] | null = null;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    const rewritten = rewriteSetCookie(line, index, rules, logger);
    if (rewritten === line) continue;
    output ??= lines.slice();
    output[index] = rewritten;
  }
  return output ?? lines;
}

/**
 * One rewritten `Set-Cookie` line, or `text` itself when nothing changed; `index` only names it in the warning.
 *
 * @example
 * rewriteSetCookie('a=1', 0, rules, silentLogger); // 'a=1; Secure' with secure: true
 */
export function rewriteSetCookie(text: string, index: number, rules: CookieRules, logger: Logger): string {
  const parsed = Cookie.parse(text, { loose: true });
  if (parsed === undefined) {
    logger.warn({ stage: 'cookies', index }, 'cookies: a Set-Cookie header could not be parsed and was passed on unchanged');
    return text;
  }
  const name = parsed.key;
  const line = new SetCookieLine(text);
  if (rules.domain !== null) applyDecision(line, 'domain', 'Domain', rules.domain(line.value('domain'), name));
  if (rules.path !== null) applyDecision(line, 'path', 'Path', rules.path(line.value('path'), name));
  if (rules.secure === false) {
    removeSecure(line);
    // A `sameSite` rule (never `None` with `secure: false`) rewrites the attribute in place below.
    if (rules.sameSite === undefined) dropSameSiteNone(line);
  } else if (rules.secure === true) line.flag('secure', 'Secure');
  if (rules.sameSite !== undefined) line.set('samesite', 'SameSite', rules.sameSite);
  return line.toString();
}

/**
 * Strips `Secure`, and with it `Partitioned` (CHIPS), which browsers accept only beside it: left
 * alone it would make them reject the whole cookie.
 */
function removeSecure(line: SetCookieLine): void {
  line.remove('secure');
  line.remove('partitioned');
}

/** `SameSite=None` without `Secure` is rejected by browsers: without it the cookie falls back to their default, Lax. */
function dropSameSiteNone(line: SetCookieLine): void {
  if (line.value('samesite')?.toLowerCase() === 'none') line.remove('samesite');
}

function applyDecision(line: SetCookieLine, name: string, spelling: string, decision: string | undefined): void {
  if (decision === undefined) return;
  if (decision === '') line.remove(name);
  else line.set(name, spelling, decision);
}
