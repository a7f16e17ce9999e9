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
  const path = normalizeEscapes(target.slice(0, end));
  return end === target.length ? path : path + target.slice(end);
}

/**
 * `decodeUnreserved` for a path alone (no query: a `?` is a character here, as in a glob). A `%`
 * that starts no escape becomes `%25`, so the normal form is a fixed point: `/%6%31dmin` must not
 * turn into `/%61dmin`, which a second decoding (the upstream's) reads as `/admin` (the relay
 * itself refuses such a client path with 400, as nginx does).
 *
 * @example
 * normalizeEscapes('/v?/%7euser'); // '/v?/~user'
 * normalizeEscapes('/%6%31dmin'); // '/%256admin'
 */
export function normalizeEscapes(path: string): string {
  return path.indexOf('%') === -1 ? path : path.replace(escape, normalEscape);
}

const escape = /%([0-9A-Fa-f]{2})?/g;

/** One escape in its normal form: the character when unreserved, the escape in upper case, `%25` for a lone `%`. */
function normalEscape(match: string, hex: string | undefined): string {
  if (hex === undefined) return '%25';
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

/** A code point a URI never carries raw: anything outside ASCII (a lone surrogate included). */
const nonAscii = /[\u0080-\u{10FFFF}]/u;
const nonAsciis = new RegExp(nonAscii.source, 'gu');

/**
 * A path with its non-ASCII characters percent-encoded as UTF-8, as `encodeURI` and every HTTP
 * client encode them (`/café` is sent as `/caf%C3%A9`); ASCII, existing escapes included, stays
 * as it is. For a path written decoded in an option, to be compared with the targets clients send.
 *
 * @example
 * encodeNonAscii('/café/%7E'); // '/caf%C3%A9/%7E'
 */
export function encodeNonAscii(path: string): string {
  return nonAscii.test(path) ? path.replace(nonAsciis, percentEncodeChar) : path;
}

/**
 * One character as its UTF-8 escapes (`é` → `%C3%A9`); a lone surrogate, which has no UTF-8
 * form, as U+FFFD, as WHATWG URL encodes it (`encodeURIComponent` would throw).
 */
export function percentEncodeChar(char: string): string {
  const code = char.charCodeAt(0);
  return char.length === 1 && code >= 0xd800 && code <= 0xdfff ? '%EF%BF%BD' : encodeURIComponent(char);
}

const strayPercent = /%(?![0-9A-Fa-f]{2})/;

/**
 * Whether the path of a request target (its query aside) has a `%` that starts no `%XX` escape:
 * a target the relay refuses with 400 (`assertSafePath`), and that whatever routes by path before
 * the relay must refuse too, rather than match a form no two decoders agree on.
 *
 * @example
 * hasStrayPercent('/%6%31dmin'); // true
 * hasStrayPercent('/a?q=100%'); // false: the query is not a path
 */
export function hasStrayPercent(target: string): boolean {
  const percent = target.indexOf('%');
  if (percent === -1) return false;
  const queryStart = target.indexOf('?');
  if (queryStart !== -1 && queryStart < percent) return false;
  return strayPercent.test(queryStart === -1 ? target : target.slice(0, queryStart));
}
