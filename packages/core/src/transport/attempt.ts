import type { Agent, ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { AbortHandler } from '../request/client.js';
import { RelayError, toRelayError } from '../errors.js';
import { responseHeadersFromRaw, trailerFieldsFromRaw } from '../request/hop-by-hop.js';
import type { HeaderRecord, ProxyRequest, ProxyResponse, Target, TransportConfig } from '../types.js';
import {
  closedWithoutAnswer,
  hasQueuedRequests,
  headersForTarget,
  isEventStream,
  headStatus,
  ignoreError,
  isStaleConnectionFailure,
  logAttemptFailure,
  logClientFault,
  logTrailingBytes,
  slowReaderBudget,
  slowReaderError,
  switchedProtocols,
  timeoutError,
  uploadStallError,
  unusableHead,
  type ClientLimits,
  type Upload,
  type UploadWatch,
} from './attempt-rules.js';
import { readRequestTrailers } from './request-trailers.js';
import { kAttempt } from '../tags.js';

/**
 * How long a request sent upstream with the client's `Expect: 100-continue` waits for the upstream's
 * `100 Continue` (or its final head) before the relay sends the client a 100 itself, so that the
 * upload starts. An upstream may read the body without ever sending 100 (HTTP/1.0 servers, Python's
 * http.server; RFC 9110 §10.1.1), and a client that waits for it (node's http and http2 clients)
 * would wait until `timeouts.write`. 1 s is curl's own wait (`--expect100-timeout`), and what
 * Apache's mod_proxy answers with; an upstream that refuses within it still gets no body.
 */
export const continueWait = 1000;

/** Where an attempt is: the phase decides which timeout applies and what a failure means. */
export const enum Phase {
  Pool,
  Connect,
  Write,
  Read,
  Streaming,
  Done,
}

/** What an attempt needs from the transport binding that made it. */
export interface AttemptHost {
  readonly config: TransportConfig;
  readonly limits: Readonly<ClientLimits>;
  readonly uploads: UploadWatch;
  readonly connectEvent: 'connect' | 'secureConnect';
}

/**
 * One upstream exchange over a node:http `ClientRequest`, whoever made the request: the phases,
 * the pool / connect / write / read timeouts, the stale keep-alive resend, the slow reader and
 * slow upload rules, client aborts and the promise of the response head. A transport is an
 * adapter that makes the request (`send`), says which stream carries the response body
 * (`bodyOf`), how a phase's inactivity timeout is armed (`enter`, `rearm`) and how the request
 * is let go (`release`). A timeout or abort fix lands here, once, for every such transport.
 *
 * Listeners are module-level functions that find their attempt through a symbol tag: this is
 * the per-request hot path, where a closure per listener was measured to cost.
 */
export abstract class Attempt implements AbortHandler, Upload {
  phase = Phase.Pool;
  uploadMark = { bytes: 0, at: 0 };
  /** When the connection last moved before the client stopped reading, or 0 while it reads. */
  stalledSince = 0;
  /** Times a pause of the body when `slowClientTimeout` is shorter than the socket's silence timer (`timesPauses`). */
  stallTimer: NodeJS.Timeout | null = null;
  upstream: ClientRequest | null = null;
  socket: Socket | null = null;
  response: IncomingMessage | null = null;
  /** The stream the response body is read from, once the head is handed on. */
  body: Readable | null = null;
  /**
   * The attempt's one deadline timer: the wait for a pooled connection, then the wait for the
   * upstream's `100 Continue` (`continueWait`, an end-to-end `Expect` only), then (`watchHead`) the
   * wait for the final response head. Never two at once, so one slot.
   */
  deadline: NodeJS.Timeout | null = null;
  /** The longest silence of the response body, in ms: `timeout.read`, or 0 for an event stream. */
  idleLimit: number;
  settled = false;
  retriedStaleSocket = false;
  /** The request's trailer fields, read at the end of its body, until node:http has them. */
  trailerFields: HeaderRecord | null = null;
  /** Where this attempt goes: the stage's choice (`request.target`) or the relay's target. */
  readonly target: Target;

  constructor(
    readonly host: AttemptHost,
    readonly agent: Agent,
    readonly request: ProxyRequest,
    readonly resolve: (response: ProxyResponse) => void,
    readonly reject: (error: RelayError) => void,
  ) {
    this.idleLimit = host.config.timeouts.read;
    this.target = request.target ?? host.config.target;
  }

  /**
   * The request's headers for this attempt's target: a stage that chose another target leaves the
   * relay target's `Host` (unless `preserveHost` kept the client's), which becomes the chosen one's.
   */
  protected upstreamHeaders(): HeaderRecord {
    return headersForTarget(this.request.headers, this.target, this.host.config.target);
  }

  /** The event that ends the connect phase: TLS targets connect when their handshake is done. */
  private connectEventOf(): 'connect' | 'secureConnect' {
    if (this.target === this.host.config.target) return this.host.connectEvent;
    return this.target.protocol === 'https:' ? 'secureConnect' : 'connect';
  }

  /** Makes the upstream request and starts the body on its way. */
  abstract send(): void;
  /** The stream the relay reads `response`'s body from. */
  protected abstract bodyOf(response: IncomingMessage): Readable;
  /** Arms the inactivity timeout that applies from the start of `phase`. */
  protected abstract enter(phase: Phase): void;
  /** Re-arms the current inactivity timeout to `ms` after it fired (0 = none). */
  protected abstract rearm(ms: number): void;
  /** Stops piping into and listening to the upstream request, and destroys what this attempt made. */
  protected abstract release(): void;
  /** Where the request body is piped. */
  protected abstract bodySink(): NodeJS.WritableStream;
  /** Whether the upstream request went out on a kept-alive connection. */
  protected abstract reusedSocket(): boolean;

  /** The transport's reading of an error (a got timeout names its phase, for example). */
  protected toRelayError(error: Error): RelayError {
    return toRelayError(error);
  }

  /**
   * Pipes the request body upstream: at send, or once connected (`onConnected`) when the request
   * asks for it (`bodyRead: 'connected'`): node:http and got would take the first chunks into
   * their own buffers while connecting and lose them when the connection fails. Not always from
   * the connect: an upstream that answers early (a 413) and closes while the upload goes on loses
   * its answer to the relay's next write (EPIPE) more often when the writes follow the body's
   * arrival than when they were queued before the connect. A body that can end with trailer
   * fields ends through `endBody`, which sends them first (a rare path: the closure is fine).
   */
  protected pipeBody(body: Readable): void {
    const sink = this.bodySink() as Writable;
    if (this.request.trailers === undefined) {
      body.pipe(sink);
      return;
    }
    body.pipe(sink, { end: false });
    body.once('end', () => this.endBody(sink));
  }

  private endBody(sink: Writable): void {
    // Released (a failure, an early answer, a resend on a fresh connection): this sink is done.
    if (this.phase === Phase.Done || sink.destroyed || sink.writableEnded) return;
    const fields = readRequestTrailers(this.host.config, this.request);
    if (fields !== null) {
      this.trailerFields = fields;
      if (this.upstream !== null) this.addTrailers(this.upstream);
    }
    sink.end();
  }

  /** Hands the request's trailer fields to node:http, which writes them after the last chunk. */
  private addTrailers(upstream: ClientRequest): void {
    const fields = this.trailerFields!;
    this.trailerFields = null;
    if (upstream.hasHeader('content-length')) {
      // An HTTP/2 client's body with a length: HTTP/1.1 carries trailer fields only after chunks,
      // and the length stays (upstreams that refuse chunked uploads are common); node would drop them unsaid.
      this.host.config.logger.warn({ method: this.request.method, fields: Object.keys(fields) }, 'request trailers dropped: the upstream request has Content-Length');
      return;
    }
    try {
      upstream.addTrailers(fields as OutgoingHttpHeaders);
    } catch (error) {
      this.host.config.logger.warn({ method: this.request.method, error: (error as Error).message }, 'invalid request trailers dropped');
    }
  }

  /** The node:http request exists: watch it, its socket, and the wait for a pooled connection. */
  attach(upstream: ClientRequest): void {
    this.upstream = upstream;
    // got may take the whole body before it makes the request: the trailers wait for it.
    if (this.trailerFields !== null) this.addTrailers(upstream);
    (upstream as TaggedRequest)[kAttempt] = this;
    upstream.on('socket', onUpstreamSocket);
    upstream.on('close', onUpstreamClose);
    upstream.on('information', onUpstreamInformation);
    if (this.request.headers.expect !== undefined) upstream.on('continue', onUpstreamContinue);
    const timeouts = this.host.config.timeouts;
    // The end of the upload changes nothing when there is no body and writes and reads share a timeout.
    if (this.request.body !== null || timeouts.read !== timeouts.write) upstream.on('finish', onUpstreamFinish);
    if (hasQueuedRequests(this.agent)) {
      const pool = timeouts.pool;
      if (pool > 0) this.deadline = setTimeout(onPoolTimeout, pool, this);
      this.host.uploads.contended();
    }
  }

  onSocket(socket: Socket): void {
    this.clearDeadline();
    if (this.phase !== Phase.Pool) return;
    this.socket = socket;
    if (socket.connecting) {
      this.phase = Phase.Connect;
      this.enter(Phase.Connect);
      socket.once(this.connectEventOf(), () => this.onConnected());
      return;
    }
    this.onConnected();
  }

  onConnected(): void {
    if (this.phase >= Phase.Read) return;
    if (this.upstream!.writableFinished) {
      this.phase = Phase.Read;
      this.enter(Phase.Read);
      return;
    }
    this.phase = Phase.Write;
    this.enter(Phase.Write);
    const body = this.request.body;
    if (body === null) return;
    // The head is on its way with the client's Expect: the client waits for a 100 from upstream.
    if (this.request.headers.expect !== undefined) this.deadline = setTimeout(onContinueDeadline, continueWait, this);
    this.host.uploads.add(this);
    if (this.request.bodyRead === 'connected') this.pipeBody(body);
  }

  uploadSocket(): Socket | null {
    return this.phase === Phase.Write ? this.socket : null;
  }

  cutSlowUpload(error: RelayError): void {
    this.abortWith(error);
  }

  onFinish(): void {
    this.host.uploads.delete(this);
    if (this.phase !== Phase.Write) return;
    this.phase = Phase.Read;
    this.enter(Phase.Read);
  }

  onResponse(response: IncomingMessage): void {
    this.host.uploads.delete(this);
    this.clearDeadline();
    this.phase = Phase.Streaming;
    this.response = response;
    if (response.statusCode === 101) {
      this.fail(switchedProtocols());
      return;
    }
    // Bytes read with the head may still fail to parse, in this same tick: hand the head on
    // after that, so such a failure is a 502 rather than a head whose body never comes.
    process.nextTick(settleHead, this);
  }

  settleHead(): void {
    if (this.settled) return;
    const response = this.response!;
    const status = response.statusCode!;
    const unusable = unusableHead(status, response.rawHeaders);
    if (unusable !== null) {
      this.fail(unusable);
      return;
    }
    this.settled = true;
    const headers = responseHeadersFromRaw(response.rawHeaders);
    // An event stream may stay quiet longer than the read timeout: only the client's leaving ends it.
    if (isEventStream(headers['content-type'], this.host.limits.eventStreams)) this.idleLimit = 0;
    this.enter(Phase.Streaming);
    const body = this.bodyOf(response);
    this.body = body;
    const bodiless = this.request.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (bodiless) body.resume();
    else if (this.timesPauses()) watchPauses(this, body);
    // An answer before the upload ended: once it is read, the connection cannot be reused.
    if (!this.upstream!.writableFinished) response.once('end', onEarlyResponseEnd.bind(null, this));
    const proxied: ProxyResponse = {
      status,
      statusMessage: response.statusMessage ?? '',
      headers,
      body: bodiless ? null : body,
      // node:http parses HTTP/1.x only: an HTTP/1.0 server's answer says so in `Via`.
      httpVersion: response.httpVersion === '1.0' ? '1.0' : '1.1',
    };
    // Only a body without a length (chunked) can end with trailer fields.
    if (!bodiless && headers['content-length'] === undefined) proxied.trailers = trailersOf.bind(null, response);
    this.resolve(proxied);
  }

  onTimeout(): void {
    if (this.phase === Phase.Done || this.response?.complete === true) return;
    if (this.settled && this.body!.isPaused()) {
      this.onSlowReader();
      return;
    }
    const timeouts = this.host.config.timeouts;
    if (this.phase === Phase.Write && !this.upstream!.writableFinished) {
      this.abortWith(uploadStallError(this.request.body, this.upstream!.writableLength + (this.socket?.writableLength ?? 0), timeouts));
      return;
    }
    this.abortWith(timeoutError(this.phase === Phase.Connect ? 'connect' : 'read', timeouts));
  }

  /**
   * The upstream connection was silent because the relay stopped reading it: the client is not
   * reading the response. That is the client's side: `slowClientTimeout` applies, counted from
   * when the connection last moved, and its expiry is logged as the client's fault.
   */
  onSlowReader(): void {
    const limit = this.host.limits.slowClientTimeout;
    if (this.stalledSince === 0) {
      this.stalledSince = Date.now() - this.host.config.timeouts.read;
      this.body!.once('resume', () => this.onReaderResumed());
    }
    const left = slowReaderBudget(limit, this.stalledSince);
    if (left > 0) {
      this.rearm(left === Infinity ? 0 : left);
      return;
    }
    this.cutSlowReader(limit);
  }

  /** The client left the response unread for `limit` ms: its fault, logged as such, and its request cut. */
  private cutSlowReader(limit: number): void {
    const error = slowReaderError(limit);
    logClientFault(this.host.config, this.request, error);
    this.request.client.abort(error);
  }

  /**
   * The socket's silence timer notices a client that stopped reading only after `idleLimit`
   * (never on an event stream): a shorter `slowClientTimeout` needs the body's pauses timed.
   */
  private timesPauses(): boolean {
    const limit = this.host.limits.slowClientTimeout;
    return limit > 0 && (this.idleLimit === 0 || limit < this.idleLimit);
  }

  /** The relay stopped reading the body (the client's side is full): the client's clock starts. */
  onBodyPaused(): void {
    if (this.stallTimer !== null || this.phase === Phase.Done || this.body!.destroyed) return;
    // Unreferenced, as a socket's own timeout is: it never keeps a process up.
    this.stallTimer = setTimeout(onStalled, this.host.limits.slowClientTimeout, this).unref();
  }

  /** The client read again, or the body is over: its clock stops. */
  onBodyFlowing(): void {
    if (this.stallTimer === null) return;
    clearTimeout(this.stallTimer);
    this.stallTimer = null;
  }

  /** The body stayed paused for `slowClientTimeout`: the client is cut, as the socket timer would have done later. */
  onStalled(): void {
    this.stallTimer = null;
    const body = this.body!;
    if (this.phase === Phase.Done || this.response?.complete === true || body.destroyed || !body.isPaused()) return;
    this.cutSlowReader(this.host.limits.slowClientTimeout);
  }

  onReaderResumed(): void {
    this.stalledSince = 0;
    if (this.phase !== Phase.Done) this.enter(Phase.Streaming);
  }

  /** The upstream sent `100 Continue`: the client gets it, and the fallback is not needed. */
  onContinue(): void {
    if (this.phase === Phase.Write) this.clearDeadline();
    this.request.client.sendContinue();
  }

  /**
   * `continueWait` passed with neither a 100 nor a head from upstream: the client gets its 100 from
   * the relay, as curl would stop waiting by itself. Not when its body already flows (a client that
   * did not wait, a stage's body) or is sent: the upload is under way.
   */
  onContinueDeadline(): void {
    this.deadline = null;
    if (this.phase === Phase.Write && this.response === null && this.request.body?.readableDidRead === false) this.request.client.sendContinue();
  }

  onPoolTimeout(): void {
    this.deadline = null;
    if (this.phase !== Phase.Pool) return;
    this.abortWith(timeoutError('pool', this.host.config.timeouts));
  }

  /** The upstream request failed (with got: its stream did). */
  onError(error: Error): void {
    if (this.response?.complete === true) {
      // A whole response followed by bytes that are not HTTP: the response stands, the
      // connection (which Node closes) does not.
      logTrailingBytes(this.host.config, this.request, error);
      return;
    }
    if (this.settled) {
      // After the head the body stream carries the failure to the relay.
      const body = this.body;
      if (body !== null && !body.destroyed) body.destroy(this.toRelayError(error));
      return;
    }
    if (this.response === null && !this.retriedStaleSocket && isStaleConnectionFailure(error, this.reusedSocket(), this.request)) {
      this.resend();
      return;
    }
    this.fail(this.toRelayError(error));
  }

  /**
   * A keep-alive connection the upstream closed just as we reused it: nothing was processed,
   * so the request goes once more, on a fresh connection.
   */
  private resend(): void {
    this.retriedStaleSocket = true;
    this.clearDeadline();
    this.release();
    this.phase = Phase.Pool;
    this.upstream = null;
    this.socket = null;
    this.send();
  }

  /** The upstream request closed: before a head was handed on, that is a failure of its own. */
  onClose(): void {
    // With a head already read, `settleHead` (queued) decides.
    if (!this.settled && this.response === null) this.fail(closedWithoutAnswer(headStatus(this.upstream!)));
  }

  onClientAbort(reason: RelayError): void {
    this.abortWith(reason);
  }

  /** Tears the upstream exchange down with `reason`, wherever it is. */
  abortWith(reason: RelayError): void {
    if (this.phase === Phase.Done) return;
    if (!this.settled) {
      this.fail(reason);
      return;
    }
    this.onBodyFlowing();
    const body = this.body!;
    if (this.response?.complete !== true && !body.readableEnded && !body.destroyed) body.destroy(reason);
    this.upstream?.destroy();
  }

  fail(error: RelayError): void {
    if (this.settled) return;
    this.settled = true;
    this.phase = Phase.Done;
    this.host.uploads.delete(this);
    this.clearDeadline();
    this.release();
    this.request.client.setAbortHandler(null);
    logAttemptFailure(this.host.config, this.request, error);
    this.reject(error);
  }

  /**
   * The upstream answered in full while the upload was still going (a refusal before the body
   * was read): the rest of the body goes nowhere, and a connection with half a request on it is
   * never reused. nginx and Envoy close it too.
   */
  onEarlyResponseEnd(): void {
    const upstream = this.upstream;
    if (upstream === null || upstream.writableFinished) return;
    this.host.uploads.delete(this);
    this.request.body?.unpipe(this.bodySink());
    upstream.destroy();
  }

  /** Stops listening to the upstream request; the adapter's `release` destroys it. */
  protected detachUpstream(): void {
    const upstream = this.upstream;
    if (upstream === null) return;
    upstream.removeListener('socket', onUpstreamSocket);
    upstream.removeListener('finish', onUpstreamFinish);
    upstream.removeListener('close', onUpstreamClose);
    upstream.on('error', ignoreError);
  }

  /**
   * Bounds the wait for the final response head to `timeout.read` from the request's end, however
   * the upstream trickles it: the socket's silence timer restarts on every byte, so a header line
   * every 100 ms, or an endless run of `102 Processing`, would hold the client for good. 1xx do
   * not extend it (got's `response` timeout and Envoy's route timeout are absolute too; the relay
   * swallows 100 and 102, so the client sees nothing while it waits). Cleared by the final head.
   */
  protected watchHead(): void {
    const read = this.host.config.timeouts.read;
    if (read === 0) return;
    this.clearDeadline();
    this.deadline = setTimeout(onHeadDeadline, read, this);
  }

  onHeadDeadline(): void {
    this.deadline = null;
    if (this.phase === Phase.Read && this.response === null) this.abortWith(timeoutError('read', this.host.config.timeouts));
  }

  private clearDeadline(): void {
    if (this.deadline !== null) {
      clearTimeout(this.deadline);
      this.deadline = null;
    }
  }
}

export type TaggedRequest = ClientRequest & { [kAttempt]?: Attempt };

/** A rare path (a short `slowClientTimeout`, or an event stream): closures are fine. */
function watchPauses(attempt: Attempt, body: Readable): void {
  body.on('pause', () => attempt.onBodyPaused());
  body.on('resume', () => attempt.onBodyFlowing());
  body.once('end', () => attempt.onBodyFlowing());
  body.once('close', () => attempt.onBodyFlowing());
}

function onStalled(attempt: Attempt): void {
  attempt.onStalled();
}

function onUpstreamSocket(this: TaggedRequest, socket: Socket): void {
  this[kAttempt]!.onSocket(socket);
}

function onUpstreamClose(this: TaggedRequest): void {
  this[kAttempt]!.onClose();
}

function onUpstreamFinish(this: TaggedRequest): void {
  this[kAttempt]!.onFinish();
}

function onUpstreamInformation(this: TaggedRequest, info: { statusCode: number; rawHeaders: string[] }): void {
  // 100 and 102 are hop-by-hop answers the relay gives itself; 103 carries the upstream's hints.
  if (info.statusCode === 103) this[kAttempt]!.request.client.sendEarlyHints(responseHeadersFromRaw(info.rawHeaders));
}

function onUpstreamContinue(this: TaggedRequest): void {
  this[kAttempt]!.onContinue();
}

function onContinueDeadline(attempt: Attempt): void {
  attempt.onContinueDeadline();
}

function trailersOf(response: IncomingMessage): HeaderRecord | null {
  return trailerFieldsFromRaw(response.rawTrailers);
}

function settleHead(attempt: Attempt): void {
  attempt.settleHead();
}

function onPoolTimeout(attempt: Attempt): void {
  attempt.onPoolTimeout();
}

function onHeadDeadline(attempt: Attempt): void {
  attempt.onHeadDeadline();
}

function onEarlyResponseEnd(attempt: Attempt): void {
  attempt.onEarlyResponseEnd();
}

/** An `error` listener for the request body: the attempt fails as the body's own failure says. */
export function onBodyError(this: TaggedBody, error: Error): void {
  const attempt = this[kAttempt];
  if (attempt !== undefined) attempt.abortWith(bodyFailure(this, attempt.request, error));
}

export type TaggedBody = NodeJS.ReadableStream & { [kAttempt]?: Attempt };

/** The error for a request body stream that failed: the client's own fails only when the client went away. */
export function bodyFailure(body: unknown, request: ProxyRequest, error: Error): RelayError {
  // A body that failed with a reason of its own (a Request body that broke its Content-Length) says why.
  if (error instanceof RelayError) return error;
  return body === request.client.incoming
    ? new RelayError('ERR_CLIENT_ABORTED', `client request body failed: ${error.message}`, { cause: error })
    : toRelayError(error);
}
