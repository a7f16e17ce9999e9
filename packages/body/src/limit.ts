import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { RelayError, type Handler, type ProxyRequest, type ProxyResponse, type Stage, type StageContext } from '@relay/core';
import { loggedPath } from '@relay/core/transport';
import { closingErrorResponse } from './error-response.js';
import { mediaType, typeMatcher, type TypeMatcher } from './media-type.js';
import { assertKnownKeys, checkBytes, checkFunction, optionsObject } from './options.js';
import { ignoreError } from './stream-link.js';

/** Options of `bodyLimit()`. */
export interface BodyLimitOptions {
  /**
   * The largest request body in bytes, or a function of the request returning it (a limit per
   * path or method). `Infinity` for none. Default 1 MiB (nginx's `client_max_body_size`).
   */
  maxBytes?: number | ((request: ProxyRequest) => number);
  /**
   * Limits by the request's media type, checked before `maxBytes`, first match wins:
   * `{ 'multipart/form-data': 50 * 2 ** 20, 'application/*+json': 64 * 1024 }`. Default none.
   */
  types?: Readonly<Record<string, number>>;
}

const optionNames = ['maxBytes', 'types'] as const;

/** The limit that applies to one request, in bytes. */
export type LimitResolver = (request: ProxyRequest) => number;

/**
 * Compiles `bodyLimit()` options into the function that chooses a request's limit: the first
 * `types` entry matching its `Content-Type`, else `maxBytes`. The stage uses this function too.
 *
 * @example
 * const limitOf = limitResolver({ maxBytes: 1024, types: { 'multipart/form-data': 10 * 2 ** 20 } });
 * limitOf(request); // 10485760 for an upload, 1024 for anything else
 */
export function limitResolver(options: BodyLimitOptions = {}): LimitResolver {
  const checked = optionsObject(options, 'bodyLimit');
  assertKnownKeys(checked, optionNames, 'bodyLimit');
  const fallback = checked.maxBytes ?? 1024 * 1024;
  const byType = compileTypes(checked.types);
  if (typeof fallback === 'function') {
    checkFunction(fallback, 'bodyLimit: maxBytes');
    return function limitFor(request) {
      return typeLimit(byType, request) ?? checkBytes(fallback(request), 'bodyLimit: maxBytes(request)');
    };
  }
  const fixed = checkBytes(fallback, 'bodyLimit: maxBytes');
  if (byType.length === 0) return () => fixed;
  return function limitFor(request) {
    return typeLimit(byType, request) ?? fixed;
  };
}

function compileTypes(types: unknown): Array<[TypeMatcher, number]> {
  if (types === undefined) return [];
  if (types === null || typeof types !== 'object' || Array.isArray(types)) {
    throw new TypeError('bodyLimit: types must be an object of media type → bytes, e.g. { "multipart/form-data": 10485760 }');
  }
  return Object.entries(types).map(([pattern, bytes]) => [
    typeMatcher([pattern], 'bodyLimit: types'),
    checkBytes(bytes, `bodyLimit: types["${pattern}"]`),
  ]);
}

function typeLimit(byType: Array<[TypeMatcher, number]>, request: ProxyRequest): number | undefined {
  if (byType.length === 0) return undefined;
  const type = mediaType(request.headers['content-type']);
  for (const [matches, bytes] of byType) if (matches(type)) return bytes;
  return undefined;
}

/**
 * Refuses request bodies over a size limit with 413 (`ERR_BODY_TOO_LARGE`) and `Connection: close`.
 * A declared `Content-Length` over the limit is refused before the upstream is contacted; a chunked
 * body is counted as it streams, and the moment it crosses the limit the upstream attempt is aborted:
 * the client gets 413 when no response has started, else its connection is closed. Put it before
 * `retry()` and `transformRequest()`, so the limit applies to the client's bytes once.
 *
 * @example
 * createRelay({
 *   targetBaseUrl: 'http://api:8000',
 *   stages: [bodyLimit({ maxBytes: 64 * 1024, types: { 'multipart/form-data': 20 * 2 ** 20 } }), retry({ maxRetries: 2 })],
 * });
 */
export function bodyLimit(options: BodyLimitOptions = {}): Stage {
  const limitOf = limitResolver(options);
  return {
    name: 'body-limit',
    wrap(next: Handler, context): Handler {
      return function bodyLimitStage(request: ProxyRequest): Promise<ProxyResponse> {
        if (request.body === null) return next(request);
        const limit = limitOf(request);
        if (limit === Infinity) return next(request);
        const declared = request.headers['content-length'];
        // A declared length is enforced by Node's HTTP parser: only its value needs checking.
        if (declared !== undefined) {
          if (Number(declared) <= limit) return next(request);
          return Promise.resolve(refuseTooLarge(context, request, limit, `declared Content-Length ${String(declared)}`));
        }
        return sendCounted(next, context, request, limit);
      };
    },
  };
}

/** Sends a body of unknown length through a counter that aborts the attempt when it passes `limit`. */
async function sendCounted(next: Handler, context: StageContext, request: ProxyRequest, limit: number): Promise<ProxyResponse> {
  const counter = countedBody(request.body!, limit);
  const replay = request.replayBody;
  // The same request with its body counted: a target a stage before chose and the client's trailers go on with it.
  const counted: ProxyRequest = { ...request, body: counter, replayBody: replay === null ? null : () => countedBody(replay(), limit) };
  try {
    return await next(counted);
  } catch (error) {
    // Whatever a stage in between made of the counter's failure, the cause is the size.
    if (counter.tripped) return refuseTooLarge(context, request, limit, `more than ${limit} bytes received`);
    throw error;
  }
}

/**
 * The 413 for a request body over `limit` (`ERR_BODY_TOO_LARGE`, `Connection: close`), logged at warn.
 *
 * @example
 * return refuseTooLarge(context, request, 1024, 'declared Content-Length 4096');
 */
export function refuseTooLarge(context: StageContext, request: ProxyRequest, limit: number, detail: string): ProxyResponse {
  const error = new RelayError('ERR_BODY_TOO_LARGE', `request body over the limit of ${limit} bytes: ${detail}`);
  context.logger.warn({ method: request.method, path: loggedPath(request.path, context), limit, code: error.code }, error.message);
  return closingErrorResponse(error);
}

const kCounter = Symbol('relay.body.counter');
type CountedSource = Readable & { [kCounter]?: LimitStream };

/**
 * A pass-through that fails with `ERR_BODY_TOO_LARGE` once more than `limit` bytes went through it.
 * It fails only once something reads it: a body that crosses the limit while a stage between is
 * still working would otherwise fail before the transport listens, and the attempt would wait for a
 * body that never comes.
 *
 * @example
 * clientBody.pipe(new LimitStream(1024));
 */
export class LimitStream extends Transform {
  /** Bytes seen so far. */
  received = 0;
  /** True once the limit was passed. */
  tripped = false;
  private reading = false;
  private pending: RelayError | null = null;

  constructor(readonly limit: number) {
    super();
    if (this.readByTransport()) this.on('newListener', onLimitListener);
  }

  /**
   * Whether the transport reads this stream itself; otherwise a stream further down the chain is
   * given to `readThrough` (this one's reader, the next stream, starts at once).
   */
  protected readByTransport(): boolean {
    return true;
  }

  /** Lets a held failure out once `tail`, the stream the transport reads, is read. */
  readThrough(tail: Readable): void {
    (tail as LimitedTail)[kLimited] = this;
    tail.on('newListener', onTailListener);
  }

  /** The failure's message. */
  protected overLimitMessage(): string {
    return `request body passed the limit of ${this.limit} bytes`;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.received <= this.limit) {
      callback(null, chunk);
      return;
    }
    this.tripped = true;
    const error = new RelayError('ERR_BODY_TOO_LARGE', this.overLimitMessage());
    // The write callback is never called before the failure: the client's body waits, unread.
    if (this.reading) callback(error);
    else this.pending = error;
  }

  /** Something started reading: a failure held back until now is raised once its listeners are in place. */
  readStarted(): void {
    if (this.reading) return;
    this.reading = true;
    if (this.pending !== null) process.nextTick(failPending, this);
  }

  failNow(): void {
    const error = this.pending;
    this.pending = null;
    if (error !== null) this.destroy(error);
  }
}

const kLimited = Symbol('relay.body.limited');
type LimitedTail = Readable & { [kLimited]?: LimitStream };

function onLimitListener(this: LimitStream, event: string | symbol): void {
  if (event === 'data' || event === 'readable') this.readStarted();
}

function onTailListener(this: LimitedTail, event: string | symbol): void {
  if (event === 'data' || event === 'readable') this[kLimited]?.readStarted();
}

function failPending(stream: LimitStream): void {
  stream.failNow();
}

/** `source` piped into a new `LimitStream`; a failing or truncated source fails it as a client abort. */
function countedBody(source: Readable, limit: number): LimitStream {
  const counter = new LimitStream(limit);
  // It may fail before the transport (or a stage between) listens: that must not crash the process.
  counter.on('error', ignoreError);
  const tagged = source as CountedSource;
  tagged[kCounter] = counter;
  source.on('error', onSourceError);
  source.on('close', onSourceClose);
  source.pipe(counter);
  return counter;
}

function onSourceError(this: CountedSource, error: Error): void {
  this[kCounter]?.destroy(new RelayError('ERR_CLIENT_ABORTED', `client request body failed: ${error.message}`, { cause: error }));
}

function onSourceClose(this: CountedSource): void {
  if (!this.readableEnded) this[kCounter]?.destroy(new RelayError('ERR_CLIENT_ABORTED', 'client closed the connection before the request body ended'));
}
