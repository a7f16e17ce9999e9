// Header edits for a body whose bytes changed: what must go, what must be weakened, what to add.
import type { HeaderRecord } from '@relay/core';

/** Headers that vouch for the exact bytes of a body: wrong as soon as the bytes change. */
const digestHeaders = ['content-md5', 'content-digest', 'repr-digest', 'digest'] as const;

/**
 * Removes what vouches for the old bytes of a body that was rewritten: `ETag` (a new body is a new
 * representation), `Content-MD5`, `Content-Digest`, `Repr-Digest` and `Digest`.
 *
 * @example
 * dropStaleValidators(response.headers);
 */
export function dropStaleValidators(headers: HeaderRecord): void {
  delete headers.etag;
  for (const name of digestHeaders) delete headers[name];
}

/**
 * For a body that was only compressed: the content is the same, the bytes are not. A strong `ETag`
 * becomes weak (as nginx's gzip does), digests of the bytes go, and so do `Content-Length` and
 * `Accept-Ranges` (ranges of a compressed stream are not offered).
 *
 * @example
 * markEncoded(response.headers, 'br');
 */
export function markEncoded(headers: HeaderRecord, coding: string): void {
  const etag = headers.etag;
  if (typeof etag === 'string' && !etag.startsWith('W/')) headers.etag = `W/${etag}`;
  for (const name of digestHeaders) delete headers[name];
  delete headers['content-length'];
  delete headers['accept-ranges'];
  headers['content-encoding'] = coding;
}

/**
 * Adds `Accept-Encoding` to `Vary` unless it is there already or `Vary` is `*`.
 *
 * @example
 * addVaryAcceptEncoding(response.headers); // Vary: Origin, Accept-Encoding
 */
export function addVaryAcceptEncoding(headers: HeaderRecord): void {
  const vary = headers.vary;
  if (vary === undefined) {
    headers.vary = 'Accept-Encoding';
    return;
  }
  const value = typeof vary === 'string' ? vary : vary.join(', ');
  if (/(?:^|,)\s*(?:\*|accept-encoding)\s*(?:,|$)/i.test(value)) return;
  headers.vary = value.trim() === '' ? 'Accept-Encoding' : `${value}, Accept-Encoding`;
}
