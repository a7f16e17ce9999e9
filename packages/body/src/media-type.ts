import type { HeaderValue } from '@relay/core';

/**
 * The media type of a `Content-Type` value, lowercased and without parameters
 * (`Text/HTML; charset=utf-8` → `text/html`); `''` when there is none.
 *
 * @example
 * mediaType('application/json; charset=utf-8'); // 'application/json'
 */
export function mediaType(contentType: HeaderValue | undefined): string {
  if (contentType === undefined) return '';
  const value = typeof contentType === 'string' ? contentType : (contentType[0] ?? '');
  const semicolon = value.indexOf(';');
  return (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
}

/**
 * The `charset` parameter of a `Content-Type` value, lowercased; `''` when absent.
 *
 * @example
 * charset('text/html; charset="ISO-8859-1"'); // 'iso-8859-1'
 */
export function charset(contentType: HeaderValue | undefined): string {
  if (contentType === undefined) return '';
  const value = typeof contentType === 'string' ? contentType : (contentType[0] ?? '');
  const match = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(value);
  return match === null ? '' : match[1]!.toLowerCase();
}

/** A compiled list of media type patterns: answers whether a media type is in it. */
export type TypeMatcher = (type: string) => boolean;

const patternSyntax = /^(\*|[a-z0-9!#$&^_.+-]+)\/(\*|\*\+[a-z0-9!#$&^_.+-]+|[a-z0-9!#$&^_.+-]+)$/;

/**
 * Compiles media type patterns: `type/subtype`, `type/*`, `type/*+suffix` (`application/*+json`
 * matches `application/ld+json`) and `*\/*`. Throws a TypeError naming `option` on a bad pattern.
 *
 * @example
 * const isText = typeMatcher(['text/*', 'application/json'], 'types');
 * isText('text/html'); // true
 */
export function typeMatcher(patterns: unknown, option: string): TypeMatcher {
  if (!Array.isArray(patterns)) throw new TypeError(`${option} must be an array of media types such as "text/*"`);
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: Array<[string, string]> = [];
  let any = false;
  patterns.forEach((pattern: unknown, index) => {
    const lower = typeof pattern === 'string' ? pattern.trim().toLowerCase() : '';
    const match = patternSyntax.exec(lower);
    if (match === null) throw new TypeError(`${option}[${index}] must be a media type such as "text/html", "text/*" or "application/*+json", got ${JSON.stringify(pattern)}`);
    const [, main, sub] = match as unknown as [string, string, string];
    if (main === '*' && sub === '*') any = true;
    else if (main === '*') throw new TypeError(`${option}[${index}]: only "*/*" may have a wildcard type, got "${lower}"`);
    else if (sub === '*') prefixes.push(`${main}/`);
    else if (sub.startsWith('*+')) suffixes.push([`${main}/`, sub.slice(1)]);
    else exact.add(lower);
  });
  return function matchesType(type: string): boolean {
    if (type === '') return false;
    if (any || exact.has(type)) return true;
    for (const prefix of prefixes) if (type.startsWith(prefix)) return true;
    for (const [prefix, suffix] of suffixes) if (type.startsWith(prefix) && type.endsWith(suffix)) return true;
    return false;
  };
}
