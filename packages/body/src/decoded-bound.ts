// The bound on what a client's compressed request body decodes to, for transformRequestStream:
// bodyLimit() counts the bytes as they came, and a few kilobytes of gzip decode to gigabytes.
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { RelayError } from '@relay/core';
import type { BodyCoding } from './codings.js';

const kCounter = Symbol('relay.body.decodedCounter');
type WatchedTail = Readable & { [kCounter]?: DecodedCounter };

/**
 * The decoded size of one request's compressed body, counted on every attempt that sends it (the body
 * and each replay get a counter of their own).
 *
 * @example
 * const bound = new DecodedBound(1024 * 1024, 'gzip');
 * decoder.pipe(bound.counter());
 */
export class DecodedBound {
  private readonly counters: DecodedCounter[] = [];

  constructor(
    readonly limit: number,
    readonly coding: BodyCoding,
  ) {}

  counter(): DecodedCounter {
    const counter = new DecodedCounter(this.limit, this.coding);
    this.counters.push(counter);
    return counter;
  }

  /** Whether a body passed the bound: the attempt's failure, whatever became of it, means 413. */
  tripped(): boolean {
    return this.counters.some(isTripped);
  }
}

function isTripped(counter: DecodedCounter): boolean {
  return counter.tripped;
}

/**
 * A pass-through after the decoder that fails with `ERR_BODY_TOO_LARGE` once more than `limit`
 * decoded bytes went through it. The failure waits until something reads the end of the chain
 * (`watch`): a stage between may still be working, and a body that failed before the transport
 * listened would leave the attempt waiting for it until the write timeout. Meanwhile the write
 * callback is held, so the decoder stops and the client's body waits, unread.
 *
 * @example
 * const counter = new DecodedCounter(1024 * 1024, 'gzip');
 * counter.watch(decoder.pipe(counter).pipe(encoder));
 */
export class DecodedCounter extends Transform {
  /** Decoded bytes seen so far. */
  decoded = 0;
  /** True once the limit was passed. */
  tripped = false;
  private tailRead = false;
  private held: RelayError | null = null;

  constructor(
    readonly limit: number,
    readonly coding: BodyCoding,
  ) {
    super();
  }

  /** Watches the stream the transport reads (the chain's end): reading it lets a held failure out. */
  watch(tail: Readable): void {
    (tail as WatchedTail)[kCounter] = this;
    tail.on('newListener', onTailListener);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.decoded += chunk.length;
    if (this.decoded <= this.limit) {
      callback(null, chunk);
      return;
    }
    this.tripped = true;
    const error = new RelayError('ERR_BODY_TOO_LARGE', `the ${this.coding} request body decodes to more than ${this.limit} bytes`);
    if (this.tailRead) callback(error);
    else this.held = error;
  }

  tailReadStarted(): void {
    if (this.tailRead) return;
    this.tailRead = true;
    // After the reader's own listeners are in place (an `error` listener comes before or with `data`).
    if (this.held !== null) process.nextTick(failHeld, this);
  }

  failHeld(): void {
    const error = this.held;
    this.held = null;
    if (error !== null) this.destroy(error);
  }
}

function onTailListener(this: WatchedTail, event: string | symbol): void {
  if (event === 'data' || event === 'readable') this[kCounter]?.tailReadStarted();
}

function failHeld(counter: DecodedCounter): void {
  counter.failHeld();
}
