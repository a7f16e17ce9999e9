import { Readable } from 'node:stream';
import { RelayError } from '@relay/core';

/**
 * A stream of one buffered request body, made afresh for each attempt. Cheaper than
 * `Readable.from`: one push, no async iterator.
 *
 * @example
 * const body = new ReplayStream(Buffer.from('{"a":1}'));
 */
export class ReplayStream extends Readable {
  private readonly bytes: Buffer;

  constructor(bytes: Buffer) {
    super();
    this.bytes = bytes;
  }

  override _read(): void {
    this.push(this.bytes);
    this.push(null);
  }
}

const kCollector = Symbol('relay.retry.collector');
type CollectedStream = Readable & { [kCollector]?: BodyCollector };

/**
 * Reads a one-shot request body into memory for replay, up to `limit` bytes.
 *
 * Resolves with the whole body when it ends within the limit. When it grows past the limit, the
 * bytes read so far are put back at the front of the stream (`unshift`) and it resolves with `null`:
 * the stream is then whole again, paused, and must be sent once, as it streams. Rejects with
 * `ERR_CLIENT_ABORTED` when the client's body fails or closes early, with `ERR_CLIENT_TIMEOUT` when
 * it stalls longer than `stallTimeout` ms between two chunks (0: no limit), or with the error given
 * to `cancel()`.
 *
 * @example
 * const bytes = await new BodyCollector(request.body, 64 * 1024, 30_000).collect();
 */
export class BodyCollector {
  private readonly body: CollectedStream;
  private readonly limit: number;
  private readonly stallTimeout: number;
  private chunks: Buffer[] = [];
  private size = 0;
  private timer: NodeJS.Timeout | null = null;
  private resolve: ((bytes: Buffer | null) => void) | null = null;
  private reject: ((error: RelayError) => void) | null = null;

  constructor(body: Readable, limit: number, stallTimeout: number) {
    this.body = body;
    this.limit = limit;
    this.stallTimeout = stallTimeout;
  }

  /** Starts reading; call once. */
  collect(): Promise<Buffer | null> {
    return new Promise<Buffer | null>((resolve, reject) => {
      if (this.body.readableEnded || this.body.destroyed) {
        // Sending what is left would be an empty or partial body: the defect this package exists to avoid.
        reject(new RelayError('ERR_INTERNAL', 'the request body was consumed before the retry stage could buffer it'));
        return;
      }
      this.resolve = resolve;
      this.reject = reject;
      const body = this.body;
      body[kCollector] = this;
      body.on('data', onCollectData);
      body.on('end', onCollectEnd);
      body.on('error', onCollectError);
      body.on('close', onCollectClose);
      if (this.stallTimeout > 0) this.timer = setTimeout(onCollectStall, this.stallTimeout, this);
    });
  }

  /** Stops reading and rejects with `error` (the request's deadline passed). */
  cancel(error: RelayError): void {
    if (this.reject === null) return;
    const reject = this.reject;
    this.settle();
    this.body.pause();
    reject(error);
  }

  onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > this.limit) {
      const resolve = this.resolve!;
      this.settle();
      const body = this.body;
      body.pause();
      body.unshift(this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size));
      this.chunks = [];
      resolve(null);
      return;
    }
    this.timer?.refresh();
  }

  onEnd(): void {
    const resolve = this.resolve;
    if (resolve === null) return;
    this.settle();
    const bytes = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    resolve(bytes);
  }

  onFail(error: RelayError): void {
    const reject = this.reject;
    if (reject === null) return;
    this.settle();
    this.chunks = [];
    reject(error);
  }

  private settle(): void {
    this.resolve = null;
    this.reject = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const body = this.body;
    body[kCollector] = undefined;
    body.removeListener('data', onCollectData);
    body.removeListener('end', onCollectEnd);
    body.removeListener('error', onCollectError);
    body.removeListener('close', onCollectClose);
    // The client may still fail this stream later; with no listener left that would throw.
    if (body.listenerCount('error') === 0) body.on('error', ignoreError);
  }
}

function ignoreError(): void {}

function onCollectData(this: CollectedStream, chunk: Buffer): void {
  this[kCollector]?.onData(chunk);
}

function onCollectEnd(this: CollectedStream): void {
  this[kCollector]?.onEnd();
}

function onCollectError(this: CollectedStream, error: Error): void {
  this[kCollector]?.onFail(new RelayError('ERR_CLIENT_ABORTED', `client request body failed: ${error.message}`, { cause: error }));
}

function onCollectClose(this: CollectedStream): void {
  // 'end' comes before 'close' for a complete body; a close without it is a client gone mid-body.
  this[kCollector]?.onFail(new RelayError('ERR_CLIENT_ABORTED', 'client closed the connection before the request body ended'));
}

function onCollectStall(collector: BodyCollector): void {
  // The client's fault, as a stalled upload is without the stage (408, nginx's client_body_timeout).
  collector.onFail(new RelayError('ERR_CLIENT_TIMEOUT', 'the client request body stalled while it was buffered for replay'));
}
