/**
 * Decodes `%XX` escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) in the path of a request
 * target, leaving the query and every other escape as they are. RFC 3986 §6.2.2.2 makes `/%6Cogin`
 * and `/login` the same resource, so routes must see one form: otherwise an encoded letter slips
 * past a prefix route (and its rateLimit) to a catch-all whose upstream decodes it. nginx also
 * normalises before it picks a location. Reserved characters (`%2F`, `%3F` …) stay encoded: decoding
 * them would change the path's meaning. Dot segments decoded here are still refused by core.
 *
 * @example
 * decodeUnreserved('/%6Cogin?next=%2F'); // '/login?next=%2F'
 */
export function decodeUnreserved(target: string): string {
  const percent = target.indexOf('%');
  // The common case: no escape at all, nothing built.
  if (percent === -1) return target;
  const queryStart = target.indexOf('?');
  if (queryStart !== -1 && queryStart < percent) return target;
  const end = queryStart === -1 ? target.length : queryStart;
  const path = target.slice(0, end).replace(escape, unreservedOrEscape);
  return end === target.length ? path : path + target.slice(end);
}

const escape = /%([0-9A-Fa-f]{2})/g;

function unreservedOrEscape(match: string, hex: string): string {
  const code = Number.parseInt(hex, 16);
  return isUnreserved(code) ? String.fromCharCode(code) : match;
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
