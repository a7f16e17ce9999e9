import type { Readable } from 'node:stream';
import { RelayError } from '@relay/core';
import { assertTimeout } from '@relay/core/transport';
import { assertKnownKeys, checkChoice } from './options.js';

const kCollector = Symbol('relay.body.collector');
type Collected = Readable & { [kCollector]?: BodyCollector };

const collectOptionNames: readonly string[] = ['side', 'stallMs'];
const sides: readonly BodySide[] = ['request', 'response'];

/** What a failing body means: the client went away (a request body) or the upstream did (a response body). */
export type BodySide = 'request' | 'response';

/**
 * Reads a body into memory up to `limit` bytes. Resolves with the bytes when it ends within the
 * limit; when it grows past it, puts what was read back at the front of the stream (`unshift`)
 * and resolves with `null`: the stream is whole again, paused, to be passed on as it is. Rejects
 * with `ERR_CLIENT_ABORTED` (request side) or `ERR_UPSTREAM_RESET` (response side) when the body
 * fails or closes early, and with `ERR_WRITE_TIMEOUT` when a request body stalls `stallMs`. Throws
 * a TypeError or RangeError naming the option for an unknown key, a `side` other than `request` or
 * `response`, or a `stallMs` that is not a timeout node's timers can wait (0 to 2^31 - 1 ms).
 *
 * @example
 * const bytes = await collectBody(response.body, 1024 * 1024, { side: 'response' });
 * if (bytes === null) return response; // too large: streams on untouched
 */
export function collectBody(body: Readable, limit: number, options: { side: BodySide; stallMs?: number }): Promise<Buffer | null> {
  if (options === null || typeof options !== 'object') throw new TypeError('collectBody(body, limit, options) needs an options object: { side, stallMs }');
  // `{ stalMs }` would wait forever on a stalled upload, silently.
  assertKnownKeys(options, collectOptionNames, 'collectBody');
  // A misspelled side would blame a client that left on the upstream (a 502, an ejected server).
  const side = checkChoice(options.side, sides, 'collectBody: side');
  // Past node's timer limit the stall timer would fire after 1 ms, on a body still flowing.
  const stallMs = options.stallMs ?? 0;
  assertTimeout(stallMs, 'collectBody: stallMs');
  return new BodyCollector(body, limit, side, stallMs).collect();
}

class BodyCollector {
  private chunks: Buffer[] = [];
  private size = 0;
  private timer: NodeJS.Timeout | null = null;
  private resolve: ((bytes: Buffer | null) => void) | null = null;
  private reject: ((error: RelayError) => void) | null = null;

  constructor(
    private readonly body: Collected,
    private readonly limit: number,
    private readonly side: BodySide,
    private readonly stallMs: number,
  ) {}

  collect(): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      const body = this.body;
      if (body.readableEnded || body.destroyed) {
        reject(new RelayError('ERR_INTERNAL', `the ${this.side} body was consumed before it could be read for a transform`));
        return;
      }
      this.resolve = resolve;
      this.reject = reject;
      body[kCollector] = this;
      body.on('data', onData);
      body.on('end', onEnd);
      body.on('error', onError);
      body.on('close', onClose);
      if (this.stallMs > 0) this.timer = setTimeout(onStall, this.stallMs, this);
    });
  }

  onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size <= this.limit) {
      this.timer?.refresh();
      return;
    }
    const resolve = this.resolve!;
    const body = this.body;
    this.settle();
    body.pause();
    body.unshift(this.bytes());
    this.chunks = [];
    resolve(null);
  }

  onEnd(): void {
    const resolve = this.resolve;
    if (resolve === null) return;
    this.settle();
    resolve(this.bytes());
    this.chunks = [];
  }

  fail(error: RelayError): void {
    const reject = this.reject;
    if (reject === null) return;
    this.settle();
    this.chunks = [];
    reject(error);
  }

  failure(detail: string, cause?: unknown): RelayError {
    return this.side === 'request'
      ? new RelayError('ERR_CLIENT_ABORTED', `client request body ${detail}`, { cause })
      : new RelayError('ERR_UPSTREAM_RESET', `upstream response body ${detail}`, { cause });
  }

  private bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
  }

  private settle(): void {
    this.resolve = null;
    this.reject = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const body = this.body;
    body[kCollector] = undefined;
    body.removeListener('data', onData);
    body.removeListener('end', onEnd);
    body.removeListener('error', onError);
    body.removeListener('close', onClose);
    // The stream may still fail later, with nobody listening: that must not throw.
    if (body.listenerCount('error') === 0) body.on('error', ignoreError);
  }
}

function ignoreError(): void {}

function onData(this: Collected, chunk: Buffer): void {
  this[kCollector]?.onData(chunk);
}

function onEnd(this: Collected): void {
  this[kCollector]?.onEnd();
}

function onError(this: Collected, error: Error): void {
  const collector = this[kCollector];
  if (collector === undefined) return;
  collector.fail(error instanceof RelayError ? error : collector.failure(`failed: ${error.message}`, error));
}

function onClose(this: Collected): void {
  // 'end' comes before 'close' for a complete body.
  const collector = this[kCollector];
  collector?.fail(collector.failure('closed before it ended'));
}

function onStall(collector: BodyCollector): void {
  collector.fail(new RelayError('ERR_WRITE_TIMEOUT', 'the client request body stalled while it was read for a transform'));
}
