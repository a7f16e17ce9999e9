// The bound on what a client's compressed request body decodes to, for transformRequestStream:
// bodyLimit() counts the bytes as they came, and a few kilobytes of gzip decode to gigabytes.
import type { Readable } from 'node:stream';
import type { BodyCoding } from './codings.js';
import { LimitStream } from './limit.js';

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
 * A `LimitStream` after the decoder: it fails with `ERR_BODY_TOO_LARGE` once more than `limit`
 * decoded bytes went through it. The failure waits until something reads the end of the chain
 * (`watch`): a stage between may still be working, and a body that failed before the transport
 * listened would leave the attempt waiting for it until the write timeout. Meanwhile the write
 * callback is held, so the decoder stops and the client's body waits, unread.
 *
 * @example
 * const counter = new DecodedCounter(1024 * 1024, 'gzip');
 * counter.watch(decoder.pipe(counter).pipe(encoder));
 */
export class DecodedCounter extends LimitStream {
  constructor(
    limit: number,
    readonly coding: BodyCoding,
  ) {
    super(limit);
  }

  /** Decoded bytes seen so far. */
  get decoded(): number {
    return this.received;
  }

  /** Watches the stream the transport reads (the chain's end): reading it lets a held failure out. */
  watch(tail: Readable): void {
    this.readThrough(tail);
  }

  protected override readByTransport(): boolean {
    return false;
  }

  protected override overLimitMessage(): string {
    return `the ${this.coding} request body decodes to more than ${this.limit} bytes`;
  }
}
