// A client's compressed request body on its way up through transformRequestStream: the decoder of
// each attempt's body (the body and every replay), and whether one of them found bytes that are not
// what their Content-Encoding says. That is the client's error (400), whatever the attempt made of it.
import type { Transform } from 'node:stream';
import { RelayError } from '@relay/core';
import { createDecoder, type BodyCoding } from './codings.js';
import type { DecodedBound } from './decoded-bound.js';

const kDecoding = Symbol('relay.body.decoding');
type TrackedDecoder = Transform & { [kDecoding]?: RequestDecoding };

/**
 * The decoders of one request's compressed body and the bound on what they decode to (`null`: none).
 *
 * @example
 * const decoding = new RequestDecoding('gzip', null);
 * clientBody.pipe(decoding.decoder());
 * // later, the attempt failed:
 * if (decoding.failure !== null) return badRequestBodyResponse();
 */
export class RequestDecoding {
  /** The first failure of a decoder on the client's bytes (corrupt, cut short), for the log line. */
  failure: Error | null = null;

  constructor(
    readonly coding: BodyCoding,
    readonly bound: DecodedBound | null,
  ) {}

  /** A decoder for one attempt's body; its own failure is recorded here. */
  decoder(): Transform {
    const decoder: TrackedDecoder = createDecoder(this.coding);
    decoder[kDecoding] = this;
    decoder.on('error', onDecoderError);
    return decoder;
  }
}

function onDecoderError(this: TrackedDecoder, error: Error): void {
  // A RelayError reached the decoder from its source (the client went away, a limit before it): not the
  // bytes' fault. Any other error is the decoder's own: zlib found no valid coding, or the bytes ended mid-stream.
  if (error instanceof RelayError) return;
  const decoding = this[kDecoding]!;
  decoding.failure ??= error;
}
