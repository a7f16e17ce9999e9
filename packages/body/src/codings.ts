import { constants as bufferConstants } from 'node:buffer';
import { promisify } from 'node:util';
import zlib, { type BrotliOptions, type ZlibOptions } from 'node:zlib';
import type { Transform, TransformCallback } from 'node:stream';
import type { HeaderValue } from '@relay/core';
import { DeflateDecoder } from './deflate-decoder.js';
import { assertKnownKeys } from './options.js';

/** A content coding this package can decode and encode again. */
export type BodyCoding = 'gzip' | 'br' | 'deflate';

/** Compression effort for the codings this package writes. */
export interface CodingLevels {
  /** zlib level for gzip and deflate, 1 (fastest) to 9. */
  gzipLevel: number;
  /** Brotli quality, 0 (fastest) to 11. */
  brotliQuality: number;
}

/**
 * The levels used when none are given: those of the `compression` middleware (gzip 6, Brotli 4).
 *
 * @example
 * const encoder = createEncoder('gzip', defaultLevels);
 */
export const defaultLevels: Readonly<CodingLevels> = Object.freeze({ gzipLevel: 6, brotliQuality: 4 });

/**
 * The one coding a `Content-Encoding` value names: `identity` when absent or `identity`, `null`
 * when it is unknown or a chain of several codings (such a body is left alone).
 *
 * @example
 * bodyCoding('GZIP'); // 'gzip'
 * bodyCoding('gzip, br'); // null
 */
export function bodyCoding(contentEncoding: HeaderValue | undefined): BodyCoding | 'identity' | null {
  if (contentEncoding === undefined) return 'identity';
  if (typeof contentEncoding !== 'string') return contentEncoding.length === 1 ? bodyCoding(contentEncoding[0]) : null;
  const value = contentEncoding.trim().toLowerCase();
  switch (value) {
    case '':
    case 'identity':
      return 'identity';
    case 'gzip':
    case 'x-gzip':
      return 'gzip';
    case 'br':
      return 'br';
    case 'deflate':
      return 'deflate';
    default:
      return null;
  }
}

const levelNames: readonly string[] = ['gzipLevel', 'brotliQuality'];

/** `levels` must be `{ gzipLevel, brotliQuality }`: a misspelled `gzipLevl` would compress at zlib's default, silently. */
function checkLevels(levels: CodingLevels, where: string): void {
  if (levels === null || typeof levels !== 'object') throw new TypeError(`${where}: levels must be an object: { gzipLevel, brotliQuality }`);
  assertKnownKeys(levels, levelNames, `${where}: levels`);
}

function zlibOptions(levels: CodingLevels): ZlibOptions {
  return { level: levels.gzipLevel };
}

function brotliOptions(levels: CodingLevels, sizeHint: number): BrotliOptions {
  const params: Record<number, number> = { [zlib.constants.BROTLI_PARAM_QUALITY]: levels.brotliQuality };
  if (sizeHint > 0) {
    params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = sizeHint;
    // A window no larger than the body: Brotli's default (4 MiB) makes every stream set up and clear
    // memory a 64 KiB response never uses (as its one-shot API does for a known size).
    params[zlib.constants.BROTLI_PARAM_LGWIN] = Math.min(Math.max(Math.ceil(Math.log2(sizeHint)), 16), zlib.constants.BROTLI_DEFAULT_WINDOW);
  }
  return { params };
}

/** A zlib stream: a Transform that can be told to flush what it holds. */
export type ZlibTransform = Transform & { flush(kind?: number): void };

/**
 * A streaming encoder for `coding`; `sizeHint` (bytes, 0 when unknown) helps Brotli size its window.
 *
 * @example
 * upstreamBody.pipe(createEncoder('br', defaultLevels, 65536));
 */
export function createEncoder(coding: BodyCoding, levels: CodingLevels, sizeHint = 0): ZlibTransform {
  checkLevels(levels, 'createEncoder');
  switch (coding) {
    case 'gzip':
      return zlib.createGzip(zlibOptions(levels));
    case 'br':
      return zlib.createBrotliCompress(brotliOptions(levels, sizeHint));
    case 'deflate':
      return zlib.createDeflate(zlibOptions(levels));
  }
}

/**
 * A streaming decoder for `coding`. `deflate` is read zlib-wrapped (RFC 9110 §8.4.1.2) or raw, as
 * browsers and `decodeBuffer` read it: the first two bytes tell which (`DeflateDecoder`). A body of
 * no bytes decodes to no bytes (`endsEmpty`).
 *
 * @example
 * gzippedBody.pipe(createDecoder('gzip'));
 */
export function createDecoder(coding: BodyCoding): Transform {
  switch (coding) {
    case 'gzip':
      // Some servers send several gzip members; browsers read them all, and so does this.
      return endsEmpty(zlib.createGunzip());
    case 'br':
      return endsEmpty(zlib.createBrotliDecompress());
    case 'deflate':
      return new DeflateDecoder();
  }
}

const kZlibTransform = Symbol('relay.body.zlibTransform');
type ZlibDecoder = Transform & { readonly bytesWritten: number; [kZlibTransform]?: Transform['_transform'] };

/**
 * An empty body labelled with a coding (an empty S3 object stored gzip, a 200 to a DELETE from a
 * framework that labels every answer) is empty content: browsers, curl and the relay alone read
 * it so. zlib finishes such a stream with "unexpected end of file"; this one ends with no output.
 */
function endsEmpty(decoder: ZlibDecoder): ZlibDecoder {
  decoder[kZlibTransform] = decoder._transform;
  decoder._transform = transformUnlessEmpty;
  return decoder;
}

function transformUnlessEmpty(this: ZlibDecoder, chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
  // An empty chunk before any byte, or the end (zlib's `_flush` finishes with an empty chunk): zlib
  // would finish a stream that never started. `bytesWritten` counts every chunk taken in so far.
  if (chunk.length === 0 && this.bytesWritten === 0) callback();
  else this[kZlibTransform]!.call(this, chunk, encoding, callback);
}

const gunzip = promisify(zlib.gunzip);
const brotliDecompress = promisify(zlib.brotliDecompress);
const inflate = promisify(zlib.inflate);
const inflateRaw = promisify(zlib.inflateRaw);
const gzip = promisify(zlib.gzip);
const brotliCompress = promisify(zlib.brotliCompress);
const deflate = promisify(zlib.deflate);

/**
 * Decodes a whole body off the main thread. Rejects with a RangeError (`ERR_BUFFER_TOO_LARGE`)
 * when it would decode to more than `maxOutputLength` bytes, so a small compression bomb cannot
 * fill memory. `deflate` bodies sent raw, without the zlib wrapper, are read too, as browsers do.
 * No bytes decode to no bytes: an empty body is empty content, whatever its `Content-Encoding`.
 *
 * @example
 * const plain = await decodeBuffer('br', bytes, 1024 * 1024);
 */
export async function decodeBuffer(coding: BodyCoding, bytes: Buffer, maxOutputLength: number): Promise<Buffer> {
  // zlib says "unexpected end of file" for zero bytes; browsers and curl read them as an empty body.
  if (bytes.length === 0) return bytes;
  const options = { maxOutputLength: Math.max(1, Math.min(maxOutputLength, bufferConstants.MAX_LENGTH)) };
  switch (coding) {
    case 'gzip':
      return gunzip(bytes, options);
    case 'br':
      return brotliDecompress(bytes, options);
    case 'deflate':
      try {
        return await inflate(bytes, options);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'Z_DATA_ERROR') throw error;
        return inflateRaw(bytes, options);
      }
  }
}

/**
 * Encodes a whole body off the main thread.
 *
 * @example
 * const gzipped = await encodeBuffer('gzip', Buffer.from('{"a":1}'), defaultLevels);
 */
export function encodeBuffer(coding: BodyCoding, bytes: Buffer, levels: CodingLevels): Promise<Buffer> {
  checkLevels(levels, 'encodeBuffer');
  switch (coding) {
    case 'gzip':
      return gzip(bytes, zlibOptions(levels));
    case 'br':
      return brotliCompress(bytes, brotliOptions(levels, bytes.length));
    case 'deflate':
      return deflate(bytes, zlibOptions(levels));
  }
}
