import type { HeaderValue } from '@relay/core';
import { assertKnownKeys, checkChoice } from './options.js';

/** A content coding `compress()` can produce. */
export type ContentCoding = 'br' | 'gzip';

/** Options of `negotiateEncoding()`. */
export interface NegotiateOptions {
  /** Codings on offer, in the server's order of preference (which wins a tie of q-values). Default `['br', 'gzip']`. */
  encodings?: readonly ContentCoding[];
}

/** What negotiation settled on: a coding, `identity` (send as is), or `null` (the client accepts nothing on offer). */
export type Negotiated = ContentCoding | 'identity' | null;

const defaultEncodings: readonly ContentCoding[] = ['br', 'gzip'];
const qvalue = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/**
 * Chooses the coding of a response from the request's `Accept-Encoding` (RFC 9110 §12.5.3):
 * the offered coding with the highest q-value wins, the server's order breaks ties (`br` before
 * `gzip` by default), `*` stands for every coding not named, `q=0` refuses, `x-gzip` is `gzip`.
 * `identity` is the answer when no header was sent, when the client prefers it, or when no coding
 * on offer is acceptable; `null` when even `identity` is refused (`identity;q=0` or `*;q=0`).
 *
 * @example
 * negotiateEncoding('gzip, deflate, br');        // 'br'
 * negotiateEncoding('br;q=0.5, gzip');           // 'gzip'
 * negotiateEncoding('identity;q=0, *;q=0');      // null
 */
export function negotiateEncoding(acceptEncoding: HeaderValue | undefined, options: NegotiateOptions = {}): Negotiated {
  return negotiate(acceptEncoding, checkNegotiateOptions(options, 'negotiateEncoding'));
}

const negotiateOptionNames: readonly string[] = ['encodings'];

/** The codings on offer, from checked options: `{ encoding: ['gzip'] }` throws naming "encodings" rather than offering br too. */
function checkNegotiateOptions(options: NegotiateOptions, where: string): readonly ContentCoding[] {
  if (options === null || typeof options !== 'object') throw new TypeError(`${where}(options) needs an options object: { encodings }`);
  assertKnownKeys(options, negotiateOptionNames, where);
  return options.encodings === undefined ? defaultEncodings : checkEncodings(options.encodings, where);
}

/**
 * The codings a response may be compressed with: a non-empty array of `br` and `gzip` (what this
 * package encodes); anything else names `encodings` in a TypeError.
 *
 * @example
 * checkEncodings(['gzip'], 'compress'); // ['gzip']
 */
export function checkEncodings(encodings: unknown, where: string): readonly ContentCoding[] {
  if (!Array.isArray(encodings) || encodings.length === 0) throw new TypeError(`${where}: encodings must be a non-empty array of "br" and "gzip"`);
  encodings.forEach((coding, index) => checkChoice(coding, ['br', 'gzip'], `${where}: encodings[${index}]`));
  return encodings as ContentCoding[];
}

function negotiate(acceptEncoding: HeaderValue | undefined, encodings: readonly ContentCoding[]): Negotiated {
  if (acceptEncoding === undefined) return 'identity';
  const value = typeof acceptEncoding === 'string' ? acceptEncoding : acceptEncoding.join(',');
  const weights = parseAcceptEncoding(value);
  const star = weights.get('*');
  let best: ContentCoding | null = null;
  let bestQ = 0;
  for (const coding of encodings) {
    const q = weights.get(coding) ?? star ?? 0;
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  const identity = weights.get('identity');
  // Unnamed, identity is acceptable (RFC 9110 §12.5.3) but ranks below any coding the client named.
  const identityQ = identity ?? (star === 0 ? 0 : -1);
  if (best !== null && bestQ >= identityQ) return best;
  return identityQ === 0 ? null : 'identity';
}

/**
 * The q-value of each coding named in an `Accept-Encoding` value; malformed members are ignored.
 *
 * @example
 * parseAcceptEncoding('gzip;q=0.5, br'); // Map { 'gzip' => 0.5, 'br' => 1 }
 */
export function parseAcceptEncoding(value: string): Map<string, number> {
  const weights = new Map<string, number>();
  for (const member of value.split(',')) {
    const parts = member.split(';');
    let name = parts[0]!.trim().toLowerCase();
    if (name === '') continue;
    if (name === 'x-gzip') name = 'gzip';
    let q = 1;
    let valid = true;
    for (let i = 1; i < parts.length; i++) {
      const [key, raw] = parts[i]!.split('=').map((s) => s.trim());
      if (key?.toLowerCase() !== 'q') continue;
      if (raw === undefined || !qvalue.test(raw)) valid = false;
      else q = Number(raw);
    }
    // The highest weight wins when a coding is named twice.
    if (valid && q >= (weights.get(name) ?? 0)) weights.set(name, q);
  }
  return weights;
}

/**
 * `negotiateEncoding` with a small cache by header value: clients send a handful of distinct
 * `Accept-Encoding` strings, so parsing happens once per string, not once per request.
 *
 * @example
 * const negotiate = cachedNegotiator({ encodings: ['gzip'] });
 * negotiate(request.headers['accept-encoding']); // 'gzip' or 'identity'
 */
export function cachedNegotiator(options: NegotiateOptions = {}): (acceptEncoding: HeaderValue | undefined) => Negotiated {
  const encodings = checkNegotiateOptions(options, 'cachedNegotiator');
  const cache = new Map<string, Negotiated>();
  return function cachedNegotiate(acceptEncoding) {
    if (typeof acceptEncoding !== 'string') return negotiate(acceptEncoding, encodings);
    let result = cache.get(acceptEncoding);
    if (result === undefined) {
      result = negotiate(acceptEncoding, encodings);
      // Bounded: a client sending a new string each time cannot grow it without limit.
      if (cache.size >= 256) cache.clear();
      cache.set(acceptEncoding, result);
    }
    return result;
  };
}

const decodable = new Set(['gzip', 'x-gzip', 'br', 'deflate', 'identity']);

/**
 * An `Accept-Encoding` value reduced to the codings this package can decode (gzip, br, deflate,
 * identity; `*` and others such as zstd dropped, q-values kept), so a transformed response never
 * arrives in a coding the transform would have to pass untouched. `undefined` when nothing is left:
 * the upstream then sends identity.
 *
 * @example
 * decodableAcceptEncoding('zstd, br;q=0.9, *'); // 'br;q=0.9'
 */
export function decodableAcceptEncoding(acceptEncoding: HeaderValue): string | undefined {
  const value = typeof acceptEncoding === 'string' ? acceptEncoding : acceptEncoding.join(',');
  const kept = value
    .split(',')
    .map((member) => member.trim())
    .filter((member) => decodable.has(member.split(';')[0]!.trim().toLowerCase()));
  return kept.length === 0 ? undefined : kept.join(', ');
}
