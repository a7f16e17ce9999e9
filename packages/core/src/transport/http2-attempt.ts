// One upstream exchange on an HTTP/2 stream: the same phases, timeouts, slow-reader rule, client
// abort and error codes as the node:http attempt (attempt.ts), over a stream of a shared session.
import { EventEmitter } from 'node:events';
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Readable } from 'node:stream';
import { RelayError } from '../errors.js';
import type { AbortHandler } from '../request/client.js';
import { trailerFieldsFromRaw } from '../request/hop-by-hop.js';
import { kHttp2Attempt } from '../tags.js';
import type { HeaderRecord, ProxyRequest, ProxyResponse, TransportConfig } from '../types.js';
import { Phase, bodyFailure, continueWait } from './attempt.js';
import { ignoreError, isEventStream, logAttemptFailure, logClientFault, slowReaderBudget, slowReaderError, timeoutError, uploadStallError, type ClientLimits } from './attempt-rules.js';
import type { PooledSession, SessionPool, StreamWaiter } from './http2-session.js';
import { readRequestTrailers } from './request-trailers.js';
import { SentBody } from './http2-sent-body.js';
import { explainHttp2Error, http2Failure, http2RequestHeaders, http2ResponseHeaders } from './http2-wire.js';

/** What an HTTP/2 attempt needs from its binding. */
export interface Http2AttemptHost {
  readonly config: TransportConfig;
  readonly limits: Readonly<ClientLimits>;
  /** Sends the request over HTTP/1.1 instead (the upstream does not offer h2), or refuses it. */
  viaHttp1(request: ProxyRequest): Promise<ProxyResponse>;
}

type TaggedStream = ClientHttp2Stream & { [kHttp2Attempt]?: Http2Attempt };
type TaggedBody = Readable & { [kHttp2Attempt]?: Http2Attempt };

const idempotent: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'DELETE', 'PUT']);
/** How often one request is sent again on a new session after the upstream refused it unprocessed. */
const maxResends = 2;

export class Http2Attempt implements AbortHandler, StreamWaiter {
  phase = Phase.Pool;
  stream: TaggedStream | null = null;
  pooled: PooledSession | null = null;
  poolTimer: NodeJS.Timeout | null = null;
  /** The wait for the upstream's `100 Continue` before the relay sends one itself (`continueWait`): an end-to-end `Expect` only. */
  continueTimer: NodeJS.Timeout | null = null;
  settled = false;
  resends = 0;
  /** When the stream last moved before the client stopped reading, or 0 while it reads. */
  stalledSince = 0;
  /** The response is an event stream (`eventStreams`): silence is not a read timeout. */
  eventStream = false;
  /** The stream failed before its head: why (its `close` decides what to do). */
  streamError: Error | null = null;
  /** The trailer fields the upstream's stream ended with (gRPC's status), once they came. */
  trailers: HeaderRecord | null = null;
  /** The body this attempt sends: the request's, or a replay of it after a resend. */
  body: TaggedBody | null;
  /**
   * The request body's chunks sent so far (up to `resendBodyLimit`), kept until the response head
   * so that a stream the upstream refused can be sent again; null when none are kept (no body, a
   * `replayBody` already, a body read before the transport, or one that outgrew the limit).
   */
  sent: SentBody | null = null;
  headers: OutgoingHttpHeaders | null = null;

  constructor(
    readonly host: Http2AttemptHost,
    /** The sessions of this attempt's target. */
    readonly pool: SessionPool,
    readonly request: ProxyRequest,
    readonly resolve: (response: ProxyResponse) => void,
    readonly reject: (error: RelayError) => void,
  ) {
    this.body = request.body;
  }

  start(): void {
    try {
      this.headers = http2RequestHeaders(this.request, this.pool.target, this.host.config.target);
    } catch (error) {
      // Invalid header names or values set by a stage land here, before any byte is sent.
      this.fail(new RelayError('ERR_INTERNAL', `cannot build the upstream request: ${(error as Error).message}`, { cause: error }));
      return;
    }
    this.request.client.setAbortHandler(this);
    if (this.settled) return;
    this.pool.acquire(this);
  }

  onQueued(): void {
    const pool = this.host.config.timeouts.pool;
    if (this.poolTimer === null && pool > 0 && !this.settled) this.poolTimer = setTimeout(onPoolTimeout, pool, this);
  }

  onPoolTimeout(): void {
    this.poolTimer = null;
    if (this.phase !== Phase.Pool || this.settled) return;
    this.pool.forget(this);
    this.fail(timeoutError('pool', this.host.config.timeouts));
  }

  onNoSession(error: RelayError): void {
    this.fail(error);
  }

  onHttp1(): void {
    if (this.settled) return;
    this.settled = true;
    this.phase = Phase.Done;
    this.clearPoolTimer();
    this.request.client.setAbortHandler(null);
    this.host.viaHttp1(this.request).then(this.resolve, this.reject);
  }

  onSession(pooled: PooledSession): void {
    this.clearPoolTimer();
    if (this.settled) {
      this.pool.release(pooled);
      return;
    }
    this.pooled = pooled;
    const body = this.body;
    let stream: TaggedStream;
    try {
      // A body that can end with trailer fields keeps the stream open for them (`wantTrailers`).
      stream = pooled.session!.request(this.headers!, { endStream: body === null, waitForTrailers: body !== null && this.request.trailers !== undefined });
    } catch (error) {
      // The session closed between the pool's check and now: nothing was sent.
      this.releaseSlot();
      this.onUnsent(error as Error);
      return;
    }
    this.stream = stream;
    stream[kHttp2Attempt] = this;
    stream.on('response', onStreamResponse);
    stream.on('headers', onStreamInformation);
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
    stream.on('timeout', onStreamTimeout);
    const { read, write } = this.host.config.timeouts;
    if (body === null) {
      this.phase = Phase.Read;
      if (read > 0) stream.setTimeout(read);
      return;
    }
    this.phase = Phase.Write;
    if (write > 0) stream.setTimeout(write);
    if (read !== write) stream.on('finish', onStreamFinish);
    if (this.request.trailers !== undefined) stream.once('wantTrailers', onStreamWantsTrailers);
    if (body[kHttp2Attempt] === undefined) this.watchBody(body);
    body[kHttp2Attempt] = this;
    // A resend: what the refused stream got first, then the rest of the body.
    if (this.sent !== null && this.sent.bytes > 0) this.sent.writeTo(stream);
    body.pipe(stream);
    // The head is on its way with the client's Expect: the client waits for a 100 from upstream.
    if (this.request.headers.expect !== undefined) this.continueTimer = setTimeout(onContinueDeadline, continueWait, this);
  }

  /**
   * The first time this body is sent: its failure fails the attempt, and unless the request can
   * replay it already, the chunks it gives are kept for a resend (from its first byte only).
   */
  private watchBody(body: TaggedBody): void {
    body.on('error', onBodyError);
    if (this.request.replayBody !== null || body.readableDidRead) return;
    this.sent = new SentBody();
    body.on('data', onBodyData);
  }

  /** The body gave `chunk` to its stream: kept, or all let go once the body outgrew the limit. */
  onBodyData(chunk: Buffer | string): void {
    if (this.sent?.add(chunk) !== false) return;
    this.dropSent();
    // No stream takes this chunk (a resend waiting for a session): dropping it would send a body with a hole.
    if (this.stream === null && this.phase !== Phase.Done) this.fail(new RelayError('ERR_UPSTREAM_RESET', 'the upstream refused the stream, and the request body outgrew what is kept to send it again'));
  }

  /** No resend can come any more (a head, a failure, a body too long to keep): the kept chunks go. */
  private dropSent(): void {
    if (this.sent === null) return;
    this.sent = null;
    this.body?.removeListener('data', onBodyData);
  }

  /** The upstream sent `100 Continue`: the client gets it, and the fallback is not needed. */
  onContinue(): void {
    this.clearContinueTimer();
    this.request.client.sendContinue();
  }

  /**
   * `continueWait` passed with neither a 100 nor a head from upstream: the client gets its 100 from
   * the relay (attempt.ts), unless its body flows already (a client that did not wait, a stage's body).
   */
  onContinueDeadline(): void {
    this.continueTimer = null;
    if (!this.settled && this.phase === Phase.Write && this.body?.readableDidRead === false) this.request.client.sendContinue();
  }

  onFinish(): void {
    if (this.phase !== Phase.Write) return;
    this.phase = Phase.Read;
    this.stream!.setTimeout(this.host.config.timeouts.read);
  }

  onResponse(headers: IncomingHttpHeaders, rawHeaders: string[], endStream: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.clearContinueTimer();
    this.dropSent();
    this.phase = Phase.Streaming;
    const stream = this.stream!;
    const status = Number(headers[':status']);
    const { read, write } = this.host.config.timeouts;
    if (read !== write || this.body === null) stream.setTimeout(read);
    // A HEADERS frame that ends the stream (gRPC's trailers-only answer) has no body: answered so,
    // an HTTP/2 client gets it as one HEADERS frame too, never HEADERS and an empty DATA frame.
    const bodiless = this.request.method === 'HEAD' || status === 204 || status === 304 || endStream;
    if (bodiless) stream.resume();
    else {
      stream.on('newListener', onStreamNewListener);
      stream.emit = emitUnlessCutShort;
    }
    const responseHeaders = http2ResponseHeaders(rawHeaders);
    // An event stream may be quiet for longer than the read timeout: only a reader that stopped is cut.
    if (!bodiless && isEventStream(responseHeaders['content-type'], this.host.limits.eventStreams)) this.eventStream = true;
    const response: ProxyResponse = { status, statusMessage: '', headers: responseHeaders, body: bodiless ? null : stream, httpVersion: '2' };
    if (!bodiless) {
      stream.once('trailers', onStreamTrailers);
      response.trailers = trailersOf.bind(null, this);
    }
    this.resolve(response);
  }

  onStreamError(error: Error): void {
    const failure = explainHttp2Error(error);
    if (!this.settled) this.streamError ??= failure;
  }

  /** The stream closed: its slot is free; before a head, the attempt is resent or fails. */
  onStreamClose(): void {
    const stream = this.stream!;
    const pooled = this.pooled!;
    this.releaseSlot();
    if (this.settled) return;
    if (this.isUnprocessed(stream, pooled) && this.canResend(false)) {
      this.resend();
      return;
    }
    if (this.streamError === null && pooled.session?.destroyed === true && this.canResend(true)) {
      this.resend();
      return;
    }
    this.fail(this.streamError !== null ? http2Failure(this.streamError) : closedBeforeHead(stream.rstCode));
  }

  /** The upstream said it did not process the stream: refused it, or it is above its GOAWAY's last stream. */
  private isUnprocessed(stream: ClientHttp2Stream, pooled: PooledSession): boolean {
    return stream.rstCode === constants.NGHTTP2_REFUSED_STREAM || (stream.id !== undefined && stream.id > pooled.lastStreamId);
  }

  /** `session.request` threw: the session is closing, nothing left the relay. */
  private onUnsent(error: Error): void {
    if (this.canResend(false)) {
      this.resend();
      return;
    }
    this.fail(http2Failure(error));
  }

  /**
   * Whether sending again is safe: the body was not started (or can be replayed: `replayBody`, or
   * the chunks sent so far are kept), the client is still there, and the resends are few. A session
   * that died under a stream the upstream may have processed (`mayHaveRun`) is only resent for an
   * idempotent request without a body, once.
   */
  private canResend(mayHaveRun: boolean): boolean {
    if (this.resends >= (mayHaveRun ? 1 : maxResends) || this.request.client.aborted) return false;
    if (mayHaveRun && (this.body !== null || !idempotent.has(this.request.method) || (this.pooled?.served ?? 2) < 2)) return false;
    const body = this.body;
    return body === null || !body.readableDidRead || this.request.replayBody !== null || this.sent !== null;
  }

  private resend(): void {
    this.resends++;
    this.detachStream();
    const body = this.body;
    // Unpiping resumes a body that waited for the old stream's drain ('data' listeners: `sent`'s own):
    // it waits for the new stream instead, or its chunks would flow into nothing meanwhile.
    body?.pause();
    // Kept chunks (`sent`) go first on the new stream, then the same body goes on; else a replay.
    if (body !== null && body.readableDidRead && this.sent === null) {
      body.removeListener('error', onBodyError);
      body[kHttp2Attempt] = undefined;
      this.body = this.request.replayBody!();
    }
    this.streamError = null;
    this.phase = Phase.Pool;
    this.pool.acquire(this);
  }

  onTimeout(): void {
    if (this.phase === Phase.Done) return;
    const stream = this.stream!;
    if (this.settled) {
      if (stream.readableEnded) return;
      if (stream.isPaused()) this.onSlowReader(stream);
      else if (!this.eventStream) abortStream(stream, timeoutError('read', this.host.config.timeouts));
      return;
    }
    const timeouts = this.host.config.timeouts;
    if (this.phase === Phase.Write && !stream.writableFinished) {
      // A write waits on the stream until its flow-control window lets nghttp2 take it.
      this.fail(uploadStallError(this.body, stream.writableLength + (this.pooled?.session?.socket?.writableLength ?? 0), timeouts));
      return;
    }
    this.fail(timeoutError('read', timeouts));
  }

  /** The stream is silent because the client does not read: `slowClientTimeout` applies (attempt.ts). */
  private onSlowReader(stream: ClientHttp2Stream): void {
    const limit = this.host.limits.slowClientTimeout;
    if (this.stalledSince === 0) {
      this.stalledSince = Date.now() - this.host.config.timeouts.read;
      stream.once('resume', () => this.onReaderResumed());
    }
    const left = slowReaderBudget(limit, this.stalledSince);
    if (left > 0) {
      stream.setTimeout(left === Infinity ? 0 : left);
      return;
    }
    const error = slowReaderError(limit);
    logClientFault(this.host.config, this.request, error);
    this.request.client.abort(error);
  }

  private onReaderResumed(): void {
    this.stalledSince = 0;
    if (this.phase !== Phase.Done) this.stream?.setTimeout(this.host.config.timeouts.read);
  }

  onClientAbort(reason: RelayError): void {
    this.abortWith(reason);
  }

  /** Tears the exchange down with `reason`: RST_STREAM CANCEL upstream, the body destroyed with `reason`. */
  abortWith(reason: RelayError): void {
    if (this.phase === Phase.Done) return;
    if (!this.settled) {
      this.fail(reason);
      return;
    }
    const stream = this.stream!;
    if (!stream.readableEnded) abortStream(stream, reason);
    else if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
  }

  fail(error: RelayError): void {
    if (this.settled) return;
    this.settled = true;
    this.phase = Phase.Done;
    this.clearPoolTimer();
    this.dropSent();
    this.pool.forget(this);
    const stream = this.stream;
    if (stream !== null) {
      this.detachStream();
      abortStream(stream, null);
    }
    this.request.client.setAbortHandler(null);
    logAttemptFailure(this.host.config, this.request, error);
    this.reject(error);
  }

  /** Stops piping into and listening to the current stream (which stays open until it closes). */
  private detachStream(): void {
    this.clearContinueTimer();
    const stream = this.stream;
    if (stream === null) return;
    this.body?.unpipe(stream);
    stream.removeListener('response', onStreamResponse);
    stream.removeListener('error', onStreamError);
    stream.removeListener('timeout', onStreamTimeout);
    stream.removeListener('finish', onStreamFinish);
    stream.on('error', ignoreError);
    if (this.pooled !== null) stream.once('close', onDetachedClose.bind(null, this.pool, this.pooled));
    stream.removeListener('close', onStreamClose);
    stream[kHttp2Attempt] = undefined;
    this.stream = null;
    this.pooled = null;
  }

  private releaseSlot(): void {
    const pooled = this.pooled;
    if (pooled === null) return;
    this.pooled = null;
    this.pool.release(pooled);
  }

  private clearPoolTimer(): void {
    if (this.poolTimer !== null) clearTimeout(this.poolTimer);
    this.poolTimer = null;
  }

  private clearContinueTimer(): void {
    if (this.continueTimer === null) return;
    clearTimeout(this.continueTimer);
    this.continueTimer = null;
  }
}

/** RST_STREAM with CANCEL (not node's INTERNAL_ERROR), then the local stream fails with `error`. */
function abortStream(stream: ClientHttp2Stream, error: RelayError | null): void {
  if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
  if (!stream.destroyed) stream.destroy(error ?? undefined);
}

function closedBeforeHead(rstCode: number | undefined): RelayError {
  const reason = rstCode === undefined || rstCode === constants.NGHTTP2_NO_ERROR ? '' : ` (RST_STREAM code ${rstCode})`;
  return new RelayError('ERR_UPSTREAM_RESET', `upstream closed the HTTP/2 stream before a response head${reason}`);
}

/**
 * node:http2 ends the body of a stream the upstream reset with NO_ERROR before END_STREAM as if it
 * were complete (it pushes the end of the body when the stream closes). The one sign of it: the
 * stream is closed and its readable side has not seen its end when node adds its own `end`
 * listener, just before pushing that end. The body then fails instead: a truncated response must
 * never look complete to the client.
 */
function onStreamNewListener(this: TaggedStream, event: string | symbol): void {
  if (event !== 'end' || !this.closed || (this as unknown as { _readableState: { ended: boolean } })._readableState.ended) return;
  this.removeListener('newListener', onStreamNewListener);
  // After node's close handling, before the end it queues is emitted.
  process.nextTick(failTruncated, this);
}

const emit = EventEmitter.prototype.emit;

/**
 * When the upstream's session dies mid-body (its connection cut), node closes each stream with
 * CANCEL and ends its body, with no error: the relay would end the client's response as if it were
 * whole. A body that ends on a stream closed with any code but NO_ERROR fails instead, as
 * `ERR_UPSTREAM_RESET` (set as the stream's own `emit`: the end is queued while node destroys the
 * stream, where no event comes first). With no `error` listener it ends as node meant.
 */
function emitUnlessCutShort(this: ClientHttp2Stream, event: string | symbol, ...args: unknown[]): boolean {
  if (event === 'end' && this.rstCode !== undefined && this.rstCode !== constants.NGHTTP2_NO_ERROR && this.listenerCount('error') > 0) {
    return emit.call(this, 'error', new RelayError('ERR_UPSTREAM_RESET', `the upstream HTTP/2 connection closed before the end of the response body (RST_STREAM code ${this.rstCode})`));
  }
  return emit.call(this, event, ...args);
}

function failTruncated(stream: ClientHttp2Stream): void {
  if (!stream.destroyed) stream.destroy(new RelayError('ERR_UPSTREAM_RESET', 'upstream reset the HTTP/2 stream before the end of the response body'));
}

function onStreamTrailers(this: TaggedStream, _headers: IncomingHttpHeaders, _flags: number, rawTrailers: string[]): void {
  const attempt = this[kHttp2Attempt];
  if (attempt !== undefined) attempt.trailers = trailerFieldsFromRaw(rawTrailers);
}

/** The body's last DATA frame is queued: the request's trailer fields end the stream (none: an empty trailer section). */
function onStreamWantsTrailers(this: TaggedStream): void {
  const attempt = this[kHttp2Attempt];
  if (attempt === undefined || this.destroyed) return;
  const fields = readRequestTrailers(attempt.host.config, attempt.request);
  try {
    this.sendTrailers((fields ?? {}) as OutgoingHttpHeaders);
  } catch (error) {
    attempt.host.config.logger.warn({ method: attempt.request.method, error: (error as Error).message }, 'invalid request trailers dropped');
    endWithoutTrailers(this);
  }
}

function endWithoutTrailers(stream: ClientHttp2Stream): void {
  try {
    stream.sendTrailers({});
  } catch {
    // The stream closed meanwhile: its close event settles the attempt.
  }
}

function trailersOf(attempt: Http2Attempt): HeaderRecord | null {
  return attempt.trailers;
}

function onStreamResponse(this: TaggedStream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void {
  // `endAfterHeaders` is not set yet when `response` is emitted: the frame's flags say it.
  this[kHttp2Attempt]!.onResponse(headers, rawHeaders, (flags & 0x1) !== 0);
}

/**
 * A 1xx HEADERS frame: a 103 carries the upstream's hints to the client; a 100 answers the
 * client's own `Expect: 100-continue` when it went upstream end to end (as over HTTP/1.1: the
 * client waits for it before sending its body); 102 is this hop's own.
 */
function onStreamInformation(this: TaggedStream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]): void {
  const attempt = this[kHttp2Attempt];
  if (attempt === undefined) return;
  const status = Number(headers[':status']);
  if (status === 103) attempt.request.client.sendEarlyHints(http2ResponseHeaders(rawHeaders));
  else if (status === 100) attempt.onContinue();
}

function onStreamError(this: TaggedStream, error: Error): void {
  const attempt = this[kHttp2Attempt];
  if (attempt !== undefined) attempt.onStreamError(error);
  else explainHttp2Error(error);
}

function onStreamClose(this: TaggedStream): void {
  this[kHttp2Attempt]?.onStreamClose();
}

function onStreamTimeout(this: TaggedStream): void {
  this[kHttp2Attempt]?.onTimeout();
}

function onStreamFinish(this: TaggedStream): void {
  this[kHttp2Attempt]?.onFinish();
}

function onContinueDeadline(attempt: Http2Attempt): void {
  attempt.onContinueDeadline();
}

function onPoolTimeout(attempt: Http2Attempt): void {
  attempt.onPoolTimeout();
}

/** A stream an attempt let go of still holds its session slot until it closes. */
function onDetachedClose(pool: SessionPool, pooled: PooledSession): void {
  pool.release(pooled);
}

/** The request body gave a chunk to its stream: kept for a resend. */
function onBodyData(this: TaggedBody, chunk: Buffer | string): void {
  this[kHttp2Attempt]?.onBodyData(chunk);
}

/** The request body failed: the attempt fails as the body's own failure says (the client's: the client left). */
function onBodyError(this: TaggedBody, error: Error): void {
  const attempt = this[kHttp2Attempt];
  if (attempt === undefined) return;
  attempt.abortWith(bodyFailure(this, attempt.request, error));
}
