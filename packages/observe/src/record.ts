import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { errorBody, RelayError, type AnswerHandler, type ClientInfo, type Handler, type HeaderRecord, type Logger, type ProxyRequest, type ProxyResponse, type RequestRefusedMessage, type Target } from '@relay/core';
import { grpcStatusForHttp, isGrpcContentType, isLocalErrorAnswer, type ErrorAnswer } from '@relay/core/transport';

/**
 * What one kind of observation (access log, metrics, tracing) does at each step of a request.
 * Bound once per relay (`wrap`), so per-relay facts are resolved before the first request.
 */
export interface Observer {
  /** The request entered the request stage. */
  start(record: RequestRecord): void;
  /** An upstream attempt is about to be sent (`record.attempts` counts it already). */
  attemptStart(record: RequestRecord, request: ProxyRequest): void;
  /** The attempt answered with a head (`status`) or failed (`error`). */
  attemptEnd(record: RequestRecord, status: number, error: RelayError | null): void;
  /** The handshake was answered with 101: a WebSocket session begins. */
  sessionOpen(record: RequestRecord): void;
  /** The request (its response body) or the WebSocket session is over. */
  end(record: RequestRecord): void;
  /** The relay answered a request itself before any stage ran (`relay:request:refused`): 400, 404, 501, 503. */
  refused?(message: RequestRefusedMessage): void;
  /** True for an observer that writes the trace ids (the access log). */
  readonly logsTraceIds?: boolean;
  /** Told, once bound, which observers share its records (tracing: whether its ids must be shared further). */
  bound?(siblings: readonly Observer[]): void;
}

/**
 * Where tracing leaves its record on the client when no access log shares its records: separate
 * `accessLog()` and `tracing()` observations (the gateway's route features) each keep their own
 * record, and the access line must still lead to the request's trace.
 */
const kTraced = Symbol('relay.observe.traced');
type TracedSlot = ClientInfo & { [kTraced]?: RequestRecord };

/** Shares `record`'s trace ids with the other observations of its request. */
export function shareTraceIds(record: RequestRecord): void {
  (record.request.client as TracedSlot)[kTraced] = record;
}

/** The record whose trace ids the access line shows: its own, else the one tracing shared. */
export function tracedRecord(record: RequestRecord): RequestRecord {
  return record.traceId !== null ? record : ((record.request.client as TracedSlot)[kTraced] ?? record);
}

/** An observer that sends each attempt itself (tracing: inside the attempt span's context). */
export interface AttemptRunner {
  runAttempt(record: RequestRecord, next: Handler, request: ProxyRequest): Promise<ProxyResponse>;
}

/**
 * The observers of one relay, and the facts they share. Each step goes to every observer in turn;
 * one that throws (a log sink that throws, a tracer provider that fails) is logged and skipped,
 * and the request goes on as if it had not been observed: the steps run in the response's event
 * listeners, where a throw would end the process. One loop per step, written out: a call by method
 * name or a closure per step would cost on every request.
 */
export class Binding {
  /** This binding's tag on the streams its records count. */
  readonly tags = new StreamTags();

  constructor(
    readonly observers: readonly Observer[],
    readonly target: Target,
    readonly runner: AttemptRunner | null,
    readonly logger: Logger,
  ) {
    for (const observer of observers) observer.bound?.(observers);
  }

  start(record: RequestRecord): void {
    const observers = this.observers;
    for (let index = 0; index < observers.length; index++) {
      try {
        observers[index]!.start(record);
      } catch (error) {
        this.failed(error);
      }
    }
  }

  attemptStart(record: RequestRecord, request: ProxyRequest): void {
    const observers = this.observers;
    for (let index = 0; index < observers.length; index++) {
      try {
        observers[index]!.attemptStart(record, request);
      } catch (error) {
        this.failed(error);
      }
    }
  }

  attemptEnd(record: RequestRecord, status: number, error: RelayError | null): void {
    const observers = this.observers;
    for (let index = 0; index < observers.length; index++) {
      try {
        observers[index]!.attemptEnd(record, status, error);
      } catch (thrown) {
        this.failed(thrown);
      }
    }
  }

  sessionOpen(record: RequestRecord): void {
    const observers = this.observers;
    for (let index = 0; index < observers.length; index++) {
      try {
        observers[index]!.sessionOpen(record);
      } catch (error) {
        this.failed(error);
      }
    }
  }

  end(record: RequestRecord): void {
    const observers = this.observers;
    for (let index = 0; index < observers.length; index++) {
      try {
        observers[index]!.end(record);
      } catch (error) {
        this.failed(error);
      }
    }
  }

  /** A request the relay refused before any stage ran, to the observers that log those. */
  refused(message: RequestRefusedMessage): void {
    const observers = this.observers;
    for (let index = 0; index < observers.length; index++) {
      try {
        observers[index]!.refused?.(message);
      } catch (error) {
        this.failed(error);
      }
    }
  }

  /** One error line (`logObserverFailure`). */
  private failed(error: unknown): void {
    logObserverFailure(this.logger, error);
  }
}

/** One error line for an observer that threw; the logger may be the sink that threw, so its own throw is dropped. */
export function logObserverFailure(logger: Logger, error: unknown): void {
  try {
    logger.error({ code: 'ERR_OBSERVER', error: error instanceof Error ? error.message : String(error) }, 'an observer failed; the request goes on');
  } catch {
    // Nowhere left to say it: the request still goes on.
  }
}

// Fixed for the process; the getter is a call into C++ on each read.
const timeOrigin = performance.timeOrigin;
type Tagged = (Readable | Socket) & { [key: symbol]: RequestRecord | undefined };

/**
 * How a binding's records find themselves from their streams' events: a symbol of its own on each
 * stream, and listeners made once per binding rather than closures per request. Two observations
 * on one relay (`accessLog()` and `metrics()` side by side) each tag and count the same stream.
 */
class StreamTags {
  readonly key = Symbol('relay.observe.record');
  readonly onBodyInData: (this: Tagged, chunk: Buffer) => void;
  readonly onBodyOutData: (this: Tagged, chunk: Buffer) => void;
  readonly onBodyOutClose: (this: Readable & Tagged) => void;
  readonly onSessionClose: (this: Socket & Tagged) => void;

  constructor() {
    const key = this.key;
    this.onBodyInData = function onBodyInData(chunk) {
      this[key]!.bytesIn += chunk.length;
    };
    this.onBodyOutData = function onBodyOutData(chunk) {
      this[key]!.bytesOut += chunk.length;
    };
    this.onBodyOutClose = function onBodyOutClose() {
      this[key]!.bodyClosed(this);
    };
    this.onSessionClose = function onSessionClose() {
      this[key]!.closeSession(this);
    };
  }
}

const on = EventEmitter.prototype.on;

/**
 * Where `@relay/ws` hangs a session's live message counts on its `ClientInfo` (its
 * `webSocketCounts()`): a registered symbol, so this package reads them without depending on it.
 */
const kCounts = Symbol.for('relay.websocket.counts');
type CountsSlot = ClientInfo & { [kCounts]?: { readonly clientMessages: number; readonly upstreamMessages: number } };

/** `application/grpc`, `application/grpc+proto`, `application/grpc-web` …: a gRPC (or gRPC-Web) answer. */
function isGrpc(headers: HeaderRecord): boolean {
  const type = headers['content-type'];
  return typeof type === 'string' && type.startsWith('application/grpc');
}

/** `grpc-status` as a number (0 to 16 are defined; others are kept as sent), `null` when absent or not a number. */
function grpcStatusOf(fields: HeaderRecord): number | null {
  const value = fields['grpc-status'];
  if (typeof value !== 'string' || !/^\d{1,3}$/.test(value)) return null;
  return Number(value);
}

/**
 * The facts of one client request while it is served, shared by the request stage and the
 * attempt stage (found through `request.client`). One object per request, fixed shape.
 */
export class RequestRecord implements AnswerHandler {
  /** `performance.now()` when the request stage saw the request. */
  readonly startedAt = performance.now();
  /** The final status: the response's, the error's, 499 when the client left first. */
  status = 0;
  /** The error code when the request failed (or its response body broke), else null. */
  code: string | null = null;
  /** Request body bytes read from the client (WebSocket: bytes the client sent during the session). */
  bytesIn = 0;
  /** Response body bytes sent to the client (WebSocket: bytes sent to the client during the session). */
  bytesOut = 0;
  /** Upstream attempts sent. */
  attempts = 0;
  /** Where the current (last) attempt went: the `request.target` a balancer chose, else the relay's target; null before one. */
  attemptTarget: Target | null = null;
  /** `performance.now()` when the current attempt started. */
  attemptStartedAt = 0;
  /** `performance.now()` when the current attempt got its head or failed (one clock read for every observer). */
  attemptEndedAt = 0;
  /** Milliseconds from the start to the last attempt's response head; -1 when none came. */
  firstByte = -1;
  /** Milliseconds from the start to the end; set when the record finishes. */
  duration = 0;
  /** True for a WebSocket session (the handshake was answered with 101). */
  session = false;
  /** A WebSocket session's messages from the client to the upstream, when its transport counts them (`@relay/ws`). */
  messagesIn = 0;
  /** A WebSocket session's messages from the upstream to the client. */
  messagesOut = 0;
  finished = false;
  /** A gRPC call's `grpc-status` (0 OK … 16), from the trailers or a trailers-only answer; `null` for anything else or when none came. */
  grpcStatus: number | null = null;
  /** A gRPC response's trailers, read for its status when its body ends. */
  private grpcTrailers: (() => HeaderRecord | null) | null = null;
  /** Route index for labels, resolved once by whoever needs it first; -2 before that. */
  route = -2;
  /** The request's trace id (hex) when tracing saw a valid one, else null: for the access line. */
  traceId: string | null = null;
  /** The span the access line points at: the request's SERVER span (yours or `serverSpan`'s), else its last attempt's. */
  spanId: string | null = null;
  /** Tracing's slots: the parent context, the SERVER span and the current attempt's CLIENT span. */
  parentContext: unknown = null;
  serverSpan: unknown = null;
  attemptSpan: unknown = null;
  /** The target and `url.full` the attempt span was opened with (tracing), to rename it when a balancer chose another. */
  attemptSpanTarget: Target | null = null;
  attemptSpanUrl = '';
  private socketRead = 0;
  private socketWritten = 0;

  /** Wall-clock start in ms since the epoch, for log timestamps (derived: no second clock read per request). */
  get startTime(): number {
    return timeOrigin + this.startedAt;
  }

  constructor(
    readonly binding: Binding,
    /** The request as the request stage saw it (method, path, headers, client). */
    readonly request: ProxyRequest,
  ) {}

  /** Counts the bytes of the client's request body as whoever consumes it reads them. */
  countBodyIn(body: Readable | null): void {
    if (body === null) return;
    const tags = this.binding.tags;
    (body as Tagged)[tags.key] = this;
    // EventEmitter's own `on`: Readable's would switch the stream to flowing mode before its consumer is ready.
    on.call(body, 'data', tags.onBodyInData);
  }

  beginAttempt(target: Target | undefined): void {
    this.attemptTarget = target ?? this.binding.target;
    this.attempts++;
    this.attemptStartedAt = performance.now();
    // `ttfb` is the last attempt's: a head a retry discarded must not stand for one that never came.
    this.firstByte = -1;
  }

  /**
   * The current attempt got its response head. A stage inside this one that chose the upstream
   * (a balancer's member, a router's choice) names it on the response: the attempt went there.
   */
  attemptAnswered(answeredBy: Target | undefined): void {
    if (answeredBy !== undefined) this.attemptTarget = answeredBy;
    this.attemptEndedAt = performance.now();
    this.firstByte = this.attemptEndedAt - this.startedAt;
  }

  /** The current attempt failed before a head. */
  attemptFailed(triedTarget: Target | undefined): void {
    if (triedTarget !== undefined) this.attemptTarget = triedTarget;
    this.attemptEndedAt = performance.now();
  }

  /** The response came back through the request stage. */
  respond(response: ProxyResponse): void {
    this.status = response.status;
    // A stage's own error answer (bodyLimit's 413, rateLimit's 429) names its error as the relay's errors do.
    if (response.errorCode !== undefined) this.code = response.errorCode;
    const socket = this.request.client.incoming?.socket as Tagged | undefined;
    if (response.status === 101 && response.upgrade !== undefined && socket !== undefined) {
      // The client left (closed, or sent its FIN: it can send no frame) or the relay began shutting
      // down during the handshake: core ends it without a session, and so does the record.
      const gone = this.request.client.abortReason;
      if (gone !== null || socket.destroyed || (socket as Socket).readableEnded) this.fail(gone ?? new RelayError('ERR_CLIENT_ABORTED', 'client went away during the handshake'));
      else this.openSession(socket as Socket & Tagged);
      return;
    }
    // Core's own test first: a stage's error answer to a gRPC call is sent trailers-only.
    if (isLocalErrorAnswer(response) && this.answeredAsGrpc()) {
      this.answeredGrpcLocally({ status: response.status, code: response.errorCode });
      return;
    }
    if (isGrpc(response.headers)) this.noteGrpc(response);
    const body = response.body as Tagged | null;
    if (body === null) {
      this.finish();
      return;
    }
    const tags = this.binding.tags;
    body[tags.key] = this;
    on.call(body, 'data', tags.onBodyOutData);
    on.call(body, 'close', tags.onBodyOutClose);
  }

  /** The pipeline failed: the relay answers with the error's status and short body. */
  fail(error: RelayError): void {
    if (error.code === 'ERR_CLIENT_ABORTED') {
      this.status = 499;
    } else if (this.answeredAsGrpc()) {
      // The relay answered a gRPC call trailers-only: HTTP 200, no body, the status in grpc-status.
      this.status = 200;
      this.bytesOut = 0;
      this.grpcStatus = grpcStatusForHttp(error);
    } else {
      this.status = error.status;
      // The relay's short error body; a HEAD answer has none.
      this.bytesOut = this.request.method === 'HEAD' ? 0 : Buffer.byteLength(errorBody(error));
    }
    this.code = error.code;
    // An app's `onError` answers instead (`toConnect({ errors: 'next' })`): the line says what it sent.
    if (this.status !== 499 && this.request.client.appAnswersErrors) this.request.client.setAnswerHandler(this);
    else this.finish();
  }

  /**
   * A stage's own error answer to a gRPC call: core sends it trailers-only (HTTP 200, no body, the
   * status in grpc-status), as it sends the relay's own errors (`fail`). Its body is read for
   * `grpc-message`, never sent: none of it counts.
   */
  private answeredGrpcLocally(answer: ErrorAnswer): void {
    this.status = 200;
    this.bytesOut = 0;
    this.grpcStatus = grpcStatusForHttp(answer);
    this.finish();
  }

  /** Whether the relay's own error reaches this client as a gRPC answer (a gRPC call over HTTP/2), as core's `sendError` decides. */
  private answeredAsGrpc(): boolean {
    const incoming = this.request.client.incoming;
    return incoming !== null && incoming.httpVersionMajor === 2 && isGrpcContentType(incoming.headers['content-type']);
  }

  /** What the app's error handler answered, once the client's response is over. */
  onClientAnswered(status: number, bodyBytes: number | null): void {
    this.status = status;
    this.bytesOut = this.request.method === 'HEAD' ? 0 : (bodyBytes ?? 0);
    this.finish();
  }

  /** A gRPC answer: its status now (a trailers-only answer), or from its trailers once the body ends. */
  private noteGrpc(response: ProxyResponse): void {
    const status = grpcStatusOf(response.headers);
    if (status !== null) this.grpcStatus = status;
    else this.grpcTrailers = response.trailers ?? null;
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.grpcTrailers !== null) {
      const trailers = this.grpcTrailers();
      if (trailers !== null) this.grpcStatus = grpcStatusOf(trailers);
    }
    this.duration = performance.now() - this.startedAt;
    this.binding.end(this);
  }

  private openSession(socket: Socket & Tagged): void {
    this.session = true;
    this.socketRead = socket.bytesRead ?? 0;
    this.socketWritten = socket.bytesWritten ?? 0;
    this.binding.sessionOpen(this);
    const tags = this.binding.tags;
    socket[tags.key] = this;
    socket.once('close', tags.onSessionClose);
  }

  /** The response body stream closed: the request is over, cut short unless the body ended. */
  bodyClosed(body: Readable): void {
    if (!body.readableEnded && this.code === null) {
      // Cut short: the client left, the relay shut down, or the upstream broke off mid-body.
      this.code = this.request.client.abortReason?.code ?? 'ERR_UPSTREAM_RESET';
    }
    this.finish();
  }

  closeSession(socket: Socket): void {
    // The client connection is closed: nothing more reaches the client, and all it sent has been read.
    this.readSession(socket);
    this.finish();
  }

  /** An open session's bytes and messages so far, into the record: a metrics scrape counts them before the close. */
  sessionSoFar(): void {
    const socket = this.request.client.incoming?.socket;
    if (this.session && !this.finished && socket !== undefined) this.readSession(socket);
  }

  private readSession(socket: Socket): void {
    // Counted from the 101 on: the handshake request is left out, the 101 head (written after the baseline) is in.
    this.bytesIn = Math.max(0, (socket.bytesRead ?? 0) - this.socketRead);
    this.bytesOut = Math.max(0, (socket.bytesWritten ?? 0) - this.socketWritten);
    const counts = (this.request.client as CountsSlot)[kCounts];
    if (counts !== undefined) {
      this.messagesIn = counts.clientMessages;
      this.messagesOut = counts.upstreamMessages;
    }
  }
}
