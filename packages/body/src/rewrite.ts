// The plain function behind the buffered transforms: one whole (possibly compressed) body in,
// decoded, handed to the user's function as text, JSON or bytes, encoded again with the same coding.
import type { HeaderRecord } from '@relay/core';
import { bodyCoding, decodeBuffer, defaultLevels, encodeBuffer } from './codings.js';
import { charset } from './media-type.js';
import { dropStaleValidators } from './representation.js';

/** How a buffered transform sees the body. */
export type BodyAs = 'text' | 'json' | 'bytes';

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
 * The Buffer encoding of a text body from its `Content-Type` charset: UTF-8 when absent, `latin1`
 * for ISO-8859-1; `null` for a charset this package does not rewrite (the body is left alone).
 * JSON is always UTF-8 (RFC 8259).
 *
 * @example
 * textEncoding('text/html; charset=ISO-8859-1', 'text'); // 'latin1'
 */
export function textEncoding(contentType: HeaderRecord['content-type'], as: BodyAs): BufferEncoding | null {
  if (as !== 'text') return 'utf8';
  switch (charset(contentType)) {
    case '':
    case 'utf-8':
    case 'utf8':
    case 'us-ascii':
    case 'ascii':
      return 'utf8';
    case 'iso-8859-1':
    case 'latin1':
      return 'latin1';
    default:
      return null;
  }
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
 * (`Content-Length`, no `ETag`, `Content-MD5` or digests). Resolves with the new bytes, or `null`
 * when the body stays as it was: `edit` returned `undefined`, the coding is not one of the three,
 * the charset is not rewritable, or it decodes to more than `maxBytes`. Rejects with a
 * `RewriteError` when the body cannot be decoded or parsed, or `edit` throws.
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
  const as = options.as;
  const coding = bodyCoding(headers['content-encoding']);
  const encoding = textEncoding(headers['content-type'], as);
  if (coding === null || encoding === null) return null;
  let plain = bytes;
  if (coding !== 'identity') {
    try {
      plain = await decodeBuffer(coding, bytes, options.maxBytes ?? Infinity);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return null;
      throw new RewriteError(`the ${coding} body cannot be decoded: ${(error as Error).message}`, 'decode', { cause: error });
    }
  }
  const value = readValue(plain, as, encoding);
  let result: BodyResult<A>;
  try {
    result = await edit(value as BodyValue<A>);
  } catch (error) {
    throw new RewriteError(`the transform failed: ${(error as Error)?.message ?? String(error)}`, 'transform', { cause: error });
  }
  if (result === undefined) return null;
  const written = writeValue(result, as, encoding);
  const encoded = coding === 'identity' ? written : await encodeBuffer(coding, written, defaultLevels);
  dropStaleValidators(headers);
  headers['content-length'] = String(encoded.length);
  return encoded;
}

function readValue(plain: Buffer, as: BodyAs, encoding: BufferEncoding): unknown {
  if (as === 'bytes') return plain;
  const text = plain.toString(encoding);
  if (as === 'text') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new RewriteError(`the body is not valid JSON: ${(error as Error).message}`, 'decode', { cause: error });
  }
}

function writeValue(result: unknown, as: BodyAs, encoding: BufferEncoding): Buffer {
  if (as === 'json') {
    const text = JSON.stringify(result) as string | undefined;
    if (text === undefined) throw new RewriteError('the transform returned a value JSON cannot represent', 'transform');
    return Buffer.from(text);
  }
  if (typeof result === 'string') return Buffer.from(result, encoding);
  if (result instanceof Uint8Array) return Buffer.isBuffer(result) ? result : Buffer.from(result.buffer, result.byteOffset, result.byteLength);
  throw new RewriteError(`the transform must return a string, a Buffer or undefined, got ${result === null ? 'null' : typeof result}`, 'transform');
}
