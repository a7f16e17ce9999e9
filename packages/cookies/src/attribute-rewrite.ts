import { RelayError } from '@relay/core';

/**
 * Decides a cookie attribute from its original value (`undefined` when the cookie has none):
 * return `''` to remove the attribute, a string to set it, `null` or `undefined` to keep it.
 */
export type AttributeRewriter = (value: string | undefined, cookieName: string) => string | null | undefined;

/**
 * An attribute rule: a function, or a map from original value to new value (`''` removes) where
 * `'*'` matches every other cookie that has the attribute.
 */
export type AttributeRewrite = AttributeRewriter | Readonly<Record<string, string>>;

/** Which attribute a rule rewrites: how its values are compared and checked. */
export interface AttributeKind {
  /** `rewriteDomain`, for messages. */
  readonly option: string;
  /** The form map keys and cookie values are compared in. */
  normalize(value: string): string;
  /** True when `value` is safe and meaningful as this attribute's value. */
  isValid(value: string): boolean;
  /** What a valid value looks like, for messages. */
  readonly expected: string;
}

/** Domain values compare case-insensitively and without a leading dot (RFC 6265 §5.2.3). */
export const domainKind: AttributeKind = {
  option: 'rewriteDomain',
  normalize: (value) => (value.charCodeAt(0) === 46 ? value.slice(1) : value).toLowerCase(),
  isValid: (value) => /^\.?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/.test(value),
  expected: 'a domain such as "example.com"',
};

/** Path values compare exactly and must start with `/` (RFC 6265 §5.2.4). */
export const pathKind: AttributeKind = {
  option: 'rewritePath',
  normalize: (value) => value,
  isValid: (value) => /^\/[\x20-\x3a\x3c-\x7e]*$/.test(value),
  expected: 'a path starting with "/" without ";" or control characters',
};

/**
 * A compiled rule: for a cookie's attribute value, `undefined` to keep the attribute, `''` to
 * remove it, or the new value. Throws `ERR_INTERNAL` when a function returns something invalid.
 */
export type AttributeDecision = (value: string | undefined, cookieName: string) => string | undefined;

/**
 * Checks a `rewriteDomain`/`rewritePath` option when the stage is built and compiles it, or
 * returns `null` when it is not set. Throws a TypeError naming the option.
 *
 * @example
 * const decide = compileAttributeRewrite({ 'auth.internal': 'example.com', '*': '' }, domainKind);
 * decide('.Auth.Internal', 'sid'); // 'example.com'
 */
export function compileAttributeRewrite(rule: unknown, kind: AttributeKind): AttributeDecision | null {
  if (rule === undefined || rule === null) return null;
  if (typeof rule === 'function') return fromFunction(rule as AttributeRewriter, kind);
  if (typeof rule !== 'object' || Array.isArray(rule)) {
    throw new TypeError(`cookies: ${kind.option} must be a function or an object mapping original values to new ones`);
  }
  const table = new Map<string, string>();
  for (const [key, value] of Object.entries(rule)) {
    if (key !== '*' && !kind.isValid(key)) {
      throw new TypeError(`cookies: ${kind.option} key ${JSON.stringify(key)} must be "*" or ${kind.expected}`);
    }
    if (typeof value !== 'string' || (value !== '' && !kind.isValid(value))) {
      throw new TypeError(`cookies: ${kind.option}[${JSON.stringify(key)}] must be "" (remove) or ${kind.expected}`);
    }
    table.set(key === '*' ? key : kind.normalize(key), value);
  }
  const fallback = table.get('*');
  return function decideFromMap(value) {
    if (value === undefined) return undefined;
    return table.get(kind.normalize(value)) ?? fallback;
  };
}

function fromFunction(rewrite: AttributeRewriter, kind: AttributeKind): AttributeDecision {
  return function decideFromFunction(value, cookieName) {
    let result: unknown;
    try {
      result = rewrite(value, cookieName);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new RelayError('ERR_INTERNAL', `cookies: ${kind.option} failed for cookie "${cookieName}": ${message}`, { cause: error });
    }
    if (result === null || result === undefined) return undefined;
    if (typeof result !== 'string' || (result !== '' && !kind.isValid(result))) {
      throw new RelayError(
        'ERR_INTERNAL',
        `cookies: ${kind.option} returned an invalid value for cookie "${cookieName}": expected "" (remove), null (keep) or ${kind.expected}`,
      );
    }
    return result;
  };
}
