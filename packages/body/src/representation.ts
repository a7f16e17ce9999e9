// Header edits for a body whose bytes changed: what must go, what must be weakened, what to add.
import type { HeaderRecord, HeaderValue, ProxyResponse } from '@relay/core';

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
 * The trailer fields of a response whose body bytes changed (compressed, rewritten): the upstream's,
 * less the digests of its old bytes, which may come as trailers (RFC 9530 §2, for a body digested as
 * it streams). The rest (`Server-Timing`, `grpc-status`) describes the message and goes on.
 *
 * @example
 * return { ...response, body, trailers: withoutStaleDigests(response.trailers) };
 */
export function withoutStaleDigests(trailers: ProxyResponse['trailers']): ProxyResponse['trailers'] {
  return trailers === undefined ? undefined : digestsDropped.bind(null, trailers);
}

function digestsDropped(trailers: () => HeaderRecord | null): HeaderRecord | null {
  const fields = trailers();
  if (fields !== null) for (const name of digestHeaders) delete fields[name];
  return fields;
}

/**
 * Removes what describes the exact bytes of a body about to be rewritten as it streams: its length,
 * its ranges and its validators (`dropStaleValidators`).
 *
 * @example
 * forgetBytes(response.headers);
 */
export function forgetBytes(headers: HeaderRecord): void {
  delete headers['content-length'];
  delete headers['accept-ranges'];
  dropStaleValidators(headers);
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
  markEncodedNotModified(headers);
  headers['content-encoding'] = coding;
}

/**
 * For a 304 standing for a compressed 200: the validators that 200 carried (RFC 9110 §15.4.5), so
 * the client's weak `ETag` is the one confirmed. `Content-Length`, `Accept-Ranges` and digests go as
 * on the 200 (§8.6: a 304's `Content-Length` must be the 200's, which is unknown once compressed);
 * no `Content-Encoding`, which is not among the fields a 304 carries.
 *
 * @example
 * markEncodedNotModified(response.headers); // ETag: "abc" → W/"abc"
 */
export function markEncodedNotModified(headers: HeaderRecord): void {
  const etag = headers.etag;
  if (typeof etag === 'string' && !etag.startsWith('W/')) headers.etag = `W/${etag}`;
  for (const name of digestHeaders) delete headers[name];
  delete headers['content-length'];
  delete headers['accept-ranges'];
}

// One member of an If-None-Match list, read from where the last one ended.
const tagMember = /\s*(W\/)?("[^"]*")\s*(?:,|$)/y;

/**
 * An `If-None-Match` list with every weak tag in its strong form (`W/"a", "b"` → `"a", "b"`), or
 * `null` when there is nothing to change (no weak tag, `*`, or a value that is not a list of tags).
 * If-None-Match compares weakly (RFC 9110 §13.1.2), so the answer of an upstream that follows the
 * RFC is the same; one that compares strings finds the strong tag it issued.
 *
 * @example
 * strongIfNoneMatch('W/"abc"'); // '"abc"'
 */
export function strongIfNoneMatch(ifNoneMatch: HeaderValue): string | null {
  const value = typeof ifNoneMatch === 'string' ? ifNoneMatch : ifNoneMatch.join(', ');
  const tags = new Set<string>();
  let weak = false;
  tagMember.lastIndex = 0;
  while (tagMember.lastIndex < value.length) {
    const match = tagMember.exec(value);
    if (match === null) return null;
    if (match[1] !== undefined) weak = true;
    tags.add(match[2]!);
  }
  return weak ? [...tags].join(', ') : null;
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
