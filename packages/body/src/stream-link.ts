// Per-request stream plumbing without per-request closures: `.pipe()` plus explicit error and
// close handling in both directions, the listeners module-level functions that find their
// partner stream through a symbol.
import type { Duplex, Readable } from 'node:stream';
import { RelayError, toRelayError } from '@relay/core';

const kNext = Symbol('relay.body.next');
const kPrevious = Symbol('relay.body.previous');
const kFlush = Symbol('relay.body.flush');
const kSide = Symbol('relay.body.side');

/** Whose failure a source's own error is: the client's connection, the upstream's, or the client's bytes not decoding. */
type Side = 'client' | 'upstream' | 'client-coding';
type Source = Readable & { [kNext]?: Duplex; [kFlush]?: number; [kSide]?: Side };
type Target = Duplex & { [kPrevious]?: Readable };

/**
 * Pipes `source` into `target` so that a failure on either side tears down both: an error or an
 * early close of `source` destroys `target` (the consumer of `target` sees the error), and
 * `target` closing before `source` ended destroys `source` (an upstream body nobody reads).
 *
 * @example
 * link(response.body, zlib.createGzip());
 */
export function link(source: Readable, target: Duplex): Duplex {
  (source as Source)[kNext] = target;
  (target as Target)[kPrevious] = source;
  source.on('error', onSourceError);
  source.on('close', onSourceClose);
  target.on('close', onTargetClose);
  source.pipe(target);
  return target;
}

/**
 * `link` for a client's request body: its failure or early close reaches `target` as
 * `ERR_CLIENT_ABORTED` (the client went away), not as an upstream failure.
 *
 * @example
 * linkClientBody(request.body, zlib.createGunzip());
 */
export function linkClientBody(source: Readable, target: Duplex): Duplex {
  (source as Source)[kSide] = 'client';
  return link(source, target);
}

/**
 * `link` for an upstream's response body: its failure reaches `target` as the `RelayError` it maps
 * to (a reset is `ERR_UPSTREAM_RESET`), so it is not mistaken for a failure of what follows.
 *
 * @example
 * linkUpstreamBody(response.body, zlib.createGunzip());
 */
export function linkUpstreamBody(source: Readable, target: Duplex): Duplex {
  (source as Source)[kSide] = 'upstream';
  return link(source, target);
}

/**
 * `link` for the decoder of a client's compressed request body: its own failure (the bytes are not
 * what their `Content-Encoding` says, or end mid-stream) reaches `target` as 400 `ERR_BAD_REQUEST`,
 * the client's error, not a failure of the relay (500) or of the upstream.
 *
 * @example
 * linkClientDecoder(zlib.createGunzip(), transform);
 */
export function linkClientDecoder(decoder: Readable, target: Duplex): Duplex {
  (decoder as Source)[kSide] = 'client-coding';
  return link(decoder, target);
}

/**
 * `linkUpstreamBody`, and a zlib flush of `kind` after each chunk: what went in comes out at once, for event
 * streams whose every event must reach the client when it is sent.
 *
 * @example
 * linkFlushing(sse, zlib.createGzip(), zlib.constants.Z_SYNC_FLUSH);
 */
export function linkFlushing(source: Readable, target: Duplex & { flush(kind?: number): void }, kind: number): Duplex {
  linkUpstreamBody(source, target);
  (source as Source)[kFlush] = kind;
  // After pipe's own `data` listener: the chunk is written first, then the flush.
  source.on('data', onSourceData);
  return target;
}

/**
 * A no-op `error` listener for a stream handed to code that attaches its own listener later (the
 * relay, once the stages above have returned): a failure in between must not crash the process.
 * Whoever consumes the stream still sees the error through its own listener.
 *
 * @example
 * encoder.on('error', ignoreError);
 */
export function ignoreError(): void {}

function onSourceError(this: Source, error: Error): void {
  this[kNext]?.destroy(sideFailure(this[kSide], error));
}

function sideFailure(side: Side | undefined, error: Error): Error {
  if (side === undefined || error instanceof RelayError) return error;
  if (side === 'upstream') return toRelayError(error);
  if (side === 'client-coding') return new RelayError('ERR_BAD_REQUEST', `client request body does not decode as its Content-Encoding says: ${error.message}`, { cause: error });
  return new RelayError('ERR_CLIENT_ABORTED', `client request body failed: ${error.message}`, { cause: error });
}

function onSourceClose(this: Source): void {
  if (this.readableEnded) return;
  const failure =
    this[kSide] === 'client' || this[kSide] === 'client-coding'
      ? new RelayError('ERR_CLIENT_ABORTED', 'client closed the connection before the request body ended')
      : new RelayError('ERR_UPSTREAM_RESET', 'the body ended before it was complete');
  this[kNext]?.destroy(failure);
}

function onTargetClose(this: Target): void {
  const source = this[kPrevious] as Source | undefined;
  if (source === undefined || source.readableEnded || source.destroyed) return;
  // Destroying a client's request would kill its connection before it gets an answer: drain it instead.
  if (source[kSide] === 'client') source.resume();
  else source.destroy();
}

function onSourceData(this: Source): void {
  (this[kNext] as unknown as { flush(kind: number): void }).flush(this[kFlush]!);
}
