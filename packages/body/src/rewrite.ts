// The plain function behind the buffered transforms: one whole (possibly compressed) body in,
// decoded, handed to the user's function as text, JSON or bytes, encoded again with the same coding.
import { isUtf8 } from 'node:buffer';
import type { HeaderRecord } from '@relay/core';
import { charsetOfLabel, decodeWindows1252, encodeWindows1252, withCharset, type TextCharset } from './charsets.js';
import { bodyCoding, decodeBuffer, defaultLevels, encodeBuffer } from './codings.js';
import { charset } from './media-type.js';
import { assertKnownKeys, checkBytes, checkChoice } from './options.js';
import { dropStaleValidators } from './representation.js';

/** How a buffered transform sees the body. */
export type BodyAs = 'text' | 'json' | 'bytes';

const bodyAsChoices: readonly BodyAs[] = ['text', 'json', 'bytes'];
const rewriteOptionNames: readonly string[] = ['as', 'maxBytes'];

/** The body value a transform function receives for each `as`. */
export type BodyValue<A extends BodyAs> = A extends 'json' ? unknown : A extends 'bytes' ? Buffer : string;

/** What a transform function may return for each `as`; `undefined` leaves the body exactly as it was. */
export type BodyResult<A extends BodyAs> = A extends 'json' ? unknown : string | Buffer | undefined;

/**
 * The media types a buffered transform handles when `types` is not given, by `as`.
 *
 * @example
 * transformResponse(fn, { types: [...defaultTransformTypes.text, 'application/x-yaml'] });
 */
export const defaultTransformTypes: Readonly<Record<BodyAs, readonly string[]>> = Object.freeze({
  text: ['text/*', 'application/json', 'application/*+json', 'application/javascript', 'application/xml', 'application/*+xml', 'image/svg+xml'],
  json: ['application/json', 'application/*+json'],
  bytes: ['*/*'],
});

/**
 * The charset of a text body from its `Content-Type`, as browsers read the label (WHATWG): UTF-8
 * when absent, `windows-1252` for ISO-8859-1, Latin-1, US-ASCII and windows-1252; `null` for a
 * charset this package does not rewrite (the body is left alone). JSON is always UTF-8 (RFC 8259).
 *
 * @example
 * textEncoding('text/html; charset=ISO-8859-1', 'text'); // 'windows-1252'
 */
export function textEncoding(contentType: HeaderRecord['content-type'], as: BodyAs): TextCharset | null {
  return as === 'text' ? charsetOfLabel(charset(contentType)) : 'utf-8';
}

/**
 * A body that names no charset is read as UTF-8 when it is UTF-8; else as windows-1252 (HTML pages
 * often name theirs only in `<meta charset>`), where every byte is a character and comes back as it
 * was: bytes `fn` did not change stay, as with nginx's `sub_filter`, instead of becoming U+FFFD.
 */
function charsetOfBody(declared: TextCharset, contentType: HeaderRecord['content-type'], plain: Buffer): TextCharset {
  return declared === 'utf-8' && charset(contentType) === '' && !isUtf8(plain) ? 'windows-1252' : declared;
}

/**
 * A body that could not be read as its headers say (bad coding, bad JSON), or a function that failed.
 *
 * @example
 * if (error instanceof RewriteError && error.stage === 'decode') return badRequestBodyResponse();
 */
export class RewriteError extends Error {
  constructor(
    message: string,
    /** `decode` when the body was not what its headers said, `transform` when the user's function failed. */
    readonly stage: 'decode' | 'transform',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RewriteError';
  }
}

/**
 * Rewrites one whole body: decodes its `Content-Encoding` (gzip, br, deflate), hands the text,
 * parsed JSON or bytes to `edit`, encodes the result with the same coding and fixes `headers`
 * (`Content-Length`, no `ETag`, `Content-MD5` or digests; `charset=utf-8` when the text no longer
 * fits its windows-1252 charset). Resolves with the new bytes, or `null` when the body stays as it
 * was: `edit` returned `undefined`, the coding is not one of the three, the charset is not
 * rewritable, it decodes to more than `maxBytes`, or it is empty under `as: 'json'` (`edit` is not called). An empty
 * body is empty content whatever its `Content-Encoding`: there is nothing to decode (`decodeBuffer`). Rejects with a
 * `RewriteError` when the body cannot be decoded or parsed, or `edit` throws; with a TypeError or
 * RangeError naming the option when `options` has an unknown key, an unknown `as` or a bad `maxBytes`.
 *
 * @example
 * const bytes = await rewriteBody(gzipped, headers, (data: any) => ({ ...data, secret: undefined }), { as: 'json' });
 */
export async function rewriteBody<A extends BodyAs>(
  bytes: Buffer,
  headers: HeaderRecord,
  edit: (body: BodyValue<A>) => BodyResult<A> | Promise<BodyResult<A>>,
  options: { as: A; maxBytes?: number },
): Promise<Buffer | null> {
  // `{ maxByte }` would decode a gzip bomb with no limit; `as: 'txt'` would be read as JSON.
  if (options === null || typeof options !== 'object') throw new TypeError('rewriteBody(bytes, headers, edit, options) needs an options object: { as, maxBytes }');
  assertKnownKeys(options, rewriteOptionNames, 'rewriteBody');
  const as = checkChoice(options.as, bodyAsChoices, 'rewriteBody: as') as A;
  const maxBytes = checkBytes(options.maxBytes ?? Infinity, 'rewriteBody: maxBytes');
  const coding = bodyCoding(headers['content-encoding']);
  const declared = textEncoding(headers['content-type'], as);
  if (coding === null || declared === null) return null;
  let plain = bytes;
  if (coding !== 'identity') {
    try {
      plain = await decodeBuffer(coding, bytes, maxBytes);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return null;
      throw new RewriteError(`the ${coding} body cannot be decoded: ${(error as Error).message}`, 'decode', { cause: error });
    }
  }
  // No content is no JSON document (a 200 to a DELETE): nothing for `edit` to read, as for a 204.
  if (as === 'json' && plain.length === 0) return null;
  const encoding = as === 'text' ? charsetOfBody(declared, headers['content-type'], plain) : declared;
  const value = readValue(plain, as, encoding);
  let result: BodyResult<A>;
  try {
    result = await edit(value as BodyValue<A>);
  } catch (error) {
    throw new RewriteError(`the transform failed: ${(error as Error)?.message ?? String(error)}`, 'transform', { cause: error });
  }
  if (result === undefined) return null;
  const written = writeValue(result, as, encoding, headers);
  const encoded = coding === 'identity' ? written : await encodeBuffer(coding, written, defaultLevels);
  dropStaleValidators(headers);
  headers['content-length'] = String(encoded.length);
  return encoded;
}

function readValue(plain: Buffer, as: BodyAs, encoding: TextCharset): unknown {
  if (as === 'bytes') return plain;
  if (as === 'text') return encoding === 'utf-8' ? plain.toString('utf8') : decodeWindows1252(plain);
  const text = plain.toString('utf8');
  try {
    // A byte order mark is not JSON, but RFC 8259 §8.1 lets a parser ignore it, and fetch's json() does.
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown;
  } catch (error) {
    throw new RewriteError(`the body is not valid JSON: ${(error as Error).message}`, 'decode', { cause: error });
  }
}

function writeValue(result: unknown, as: BodyAs, encoding: TextCharset, headers: HeaderRecord): Buffer {
  if (as === 'json') {
    const text = JSON.stringify(result) as string | undefined;
    if (text === undefined) throw new RewriteError('the transform returned a value JSON cannot represent', 'transform');
    return Buffer.from(text);
  }
  if (typeof result === 'string') return encodeText(result, encoding, headers);
  if (result instanceof Uint8Array) return Buffer.isBuffer(result) ? result : Buffer.from(result.buffer, result.byteOffset, result.byteLength);
  throw new RewriteError(`the transform must return a string, a Buffer or undefined, got ${result === null ? 'null' : typeof result}`, 'transform');
}

function encodeText(text: string, encoding: TextCharset, headers: HeaderRecord): Buffer {
  const bytes = encoding === 'utf-8' ? Buffer.from(text) : encodeWindows1252(text);
  if (bytes !== null) return bytes;
  // `fn` wrote a character the body's charset has no byte for: the whole text goes as UTF-8, and the
  // label says so (it outranks a <meta charset> in the page, HTML's encoding sniffing).
  headers['content-type'] = withCharset(headers['content-type'] ?? 'text/plain', 'utf-8');
  return Buffer.from(text);
}
