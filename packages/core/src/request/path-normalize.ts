/**
 * Normalises the percent-encoding of the path of a request target (RFC 3986 §6.2.2.1 and
 * §6.2.2.2): escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, and the
 * escapes that stay get upper-case hex digits; the query and everything else are left as they
 * are. `/%6Cogin`, `/login` and `/caf%c3%a9`, `/caf%C3%A9` name the same resources, so whatever
 * decides by path (the gateway's routes, `@relay/routing`'s conditions and rewrites) must see one
 * form: otherwise an encoded letter slips past a prefix route or a path guard to an upstream that
 * decodes it. nginx also matches its locations on the decoded URI. Reserved characters (`%2F`,
 * `%3F` …) stay encoded: decoding them would change the path's meaning. Dot segments decoded here
 * (`%2E%2E`) are still refused by the relay's path checks.
 *
 * A target without `%` is returned as it is, nothing allocated: the common case costs one scan.
 *
 * @example
 * decodeUnreserved('/%6Cogin?next=%2f'); // '/login?next=%2f'
 * decodeUnreserved('/caf%c3%a9/a%2fb'); // '/caf%C3%A9/a%2Fb'
 */
export function decodeUnreserved(target: string): string {
  const percent = target.indexOf('%');
  if (percent === -1) return target;
  const queryStart = target.indexOf('?');
  if (queryStart !== -1 && queryStart < percent) return target;
  const end = queryStart === -1 ? target.length : queryStart;
  const path = target.slice(0, end).replace(escape, normalEscape);
  return end === target.length ? path : path + target.slice(end);
}

const escape = /%([0-9A-Fa-f]{2})/g;

/** One escape in its normal form: the character when unreserved, else the escape in upper case. */
function normalEscape(match: string, hex: string): string {
  const code = Number.parseInt(hex, 16);
  return isUnreserved(code) ? String.fromCharCode(code) : match.toUpperCase();
}

function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) /* A-Z */ ||
    (code >= 0x61 && code <= 0x7a) /* a-z */ ||
    (code >= 0x30 && code <= 0x39) /* 0-9 */ ||
    code === 0x2d /* - */ ||
    code === 0x2e /* . */ ||
    code === 0x5f /* _ */ ||
    code === 0x7e /* ~ */
  );
}
