import { hopByHopHeaders } from '@relay/core/transport';

/** An RFC 9110 field name: a `token`. */
const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A character node:http refuses in a header value: anything but HTAB, visible ASCII, space and
 * obs-text. CR and LF are the ones that matter: they would split one header into two.
 */
const invalidValueChar = /[^\t\x20-\x7e\x80-\xff]/;

/** True when `name` is a valid header name (an RFC 9110 token). */
export function isHeaderName(name: string): boolean {
  return tokenPattern.test(name);
}

/** True when `value` can be sent as a header value: no CR, LF, NUL or other control character. */
export function isHeaderValue(value: string): boolean {
  return !invalidValueChar.test(value);
}

/**
 * Names no stage may set: they frame the message or describe one connection, so setting
 * them would let a header rule desynchronise the framing the transport chose.
 */
export const unsettableHeaders: ReadonlySet<string> = new Set([...hopByHopHeaders, 'content-length']);

/**
 * Reads an option that is a list of header names: checks each name and returns them
 * lowercased, without duplicates. Throws a TypeError naming the option.
 */
export function headerNameList(value: unknown, option: string): string[] {
  if (!Array.isArray(value)) throw new TypeError(`${option} must be an array of header names`);
  const names = new Set<string>();
  value.forEach((name: unknown, index) => {
    if (typeof name !== 'string' || !isHeaderName(name)) {
      throw new TypeError(`${option}[${index}] must be a header name (letters, digits and !#$%&'*+-.^_\`|~), got ${describe(name)}`);
    }
    names.add(name.toLowerCase());
  });
  return [...names];
}

/** A short, safe description of a bad option value for an error message. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
