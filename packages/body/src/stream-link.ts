// Per-request stream plumbing without per-request closures: `.pipe()` plus explicit error and
// close handling in both directions, the listeners module-level functions that find their
// partner stream through a symbol.
import type { Duplex, Readable } from 'node:stream';
import { RelayError } from '@relay/core';

const kNext = Symbol('relay.body.next');
const kPrevious = Symbol('relay.body.previous');
const kFlush = Symbol('relay.body.flush');
const kClient = Symbol('relay.body.client');

type Source = Readable & { [kNext]?: Duplex; [kFlush]?: number; [kClient]?: true };
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
  (source as Source)[kClient] = true;
  return link(source, target);
}

/**
 * `link`, and a zlib flush of `kind` after each chunk: what went in comes out at once, for event
 * streams whose every event must reach the client when it is sent.
 *
 * @example
 * linkFlushing(sse, zlib.createGzip(), zlib.constants.Z_SYNC_FLUSH);
 */
export function linkFlushing(source: Readable, target: Duplex & { flush(kind?: number): void }, kind: number): Duplex {
  link(source, target);
  (source as Source)[kFlush] = kind;
  // After pipe's own `data` listener: the chunk is written first, then the flush.
  source.on('data', onSourceData);
  return target;
}

function onSourceError(this: Source, error: Error): void {
  const failure =
    this[kClient] === true && !(error instanceof RelayError)
      ? new RelayError('ERR_CLIENT_ABORTED', `client request body failed: ${error.message}`, { cause: error })
      : error;
  this[kNext]?.destroy(failure);
}

function onSourceClose(this: Source): void {
  if (this.readableEnded) return;
  const failure =
    this[kClient] === true
      ? new RelayError('ERR_CLIENT_ABORTED', 'client closed the connection before the request body ended')
      : new RelayError('ERR_UPSTREAM_RESET', 'the body ended before it was complete');
  this[kNext]?.destroy(failure);
}

function onTargetClose(this: Target): void {
  const source = this[kPrevious] as Source | undefined;
  if (source === undefined || source.readableEnded || source.destroyed) return;
  // Destroying a client's request would kill its connection before it gets an answer: drain it instead.
  if (source[kClient] === true) source.resume();
  else source.destroy();
}

function onSourceData(this: Source): void {
  (this[kNext] as unknown as { flush(kind: number): void }).flush(this[kFlush]!);
}
