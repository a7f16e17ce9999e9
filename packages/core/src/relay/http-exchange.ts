import { validateHeaderValue, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { constants as http2Constants } from 'node:http2';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { ClientInfo, EarlyHintsTarget } from '../request/client.js';
import { RelayError, toRelayError } from '../errors.js';
import { publishRequestEnd, publishRequestStart } from '../events.js';
import { loggedPath } from '../logger.js';
import type { Handler, HeaderRecord, HeaderValue, ProxyRequest, ProxyResponse } from '../types.js';
import type { ExchangeHost } from './host.js';
import type { InFlight } from './in-flight.js';
import { answersGrpc, isLocalErrorAnswer } from './grpc-answer.js';
import { checkedResponse, goAway, isHttp2, localGrpcAnswer, sendError } from './respond.js';
import { kExchange, kSocketExchanges } from '../tags.js';

type TaggedResponse = ServerResponse & { [kExchange]?: HttpExchange };
type TaggedBody = Readable & { [kExchange]?: HttpExchange };
type TaggedSocket = Socket & { [kSocketExchanges]?: HttpExchange[] };

/**
 * One HTTP request while it is served: from the pipeline's start to the end of its response
 * (or its client's leaving). Listeners are module-level functions that find the exchange through
 * a symbol tag: this is the per-request hot path, where closures were measured to cost.
 */
export class HttpExchange implements InFlight, EarlyHintsTarget {
  previousInFlight: InFlight | null = null;
  nextInFlight: InFlight | null = null;
  listed = false;
  /** The pipeline has not settled yet. */
  running = false;
  /** The client left while the pipeline ran: `request:end` waits for it, after the attempt's events. */
  endDeferred = false;
  request: ProxyRequest | null = null;
  client: ClientInfo | null = null;
  /** Served by node:http2's compatibility API: a stream per request, no connection headers. */
  readonly http2: boolean;
  /** The client got its `100 Continue` (end-to-end `Expect` only: `expectEndToEnd`). */
  continued = false;

  constructor(
    readonly relay: ExchangeHost,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly onError: ((error: RelayError) => void) | null,
  ) {
    this.http2 = isHttp2(res);
  }

  /** Runs `request` through the pipeline and writes what it answers. */
  start(pipeline: Handler, request: ProxyRequest): void {
    this.request = request;
    this.relay.track(this);
    (this.res as TaggedResponse)[kExchange] = this;
    this.res.on('close', onClientClose);
    // No 1xx ever goes to an HTTP/1.0 client (RFC 9110 §15.2): neither 103 Early Hints nor a relayed 100 Continue.
    if (this.req.httpVersionMinor !== 0 || this.req.httpVersionMajor !== 1) request.client.setEarlyHintsTarget(this.res);
    if (this.onError !== null) request.client.setAppAnswersErrors();
    if (this.req.headers.expect !== undefined) expectEndToEnd(this, request);
    publishRequestStart(this.relay.target, request, false);
    // An HTTP/2 stream always emits `close`; only HTTP/1.1 needs the socket watched (pipelining).
    if (!this.http2) watchSocket(this);
    else if (request.body !== null) watchUploadReset(this);
    this.running = true;
    void runPipeline(pipeline, this, request);
  }

  /** Answers an error before the pipeline ran: to `dispatch`'s `onError` when there is one. */
  refuse(error: RelayError): void {
    fail(this, error);
  }

  abortForShutdown(reason: RelayError): void {
    this.client?.abort(reason);
    if (this.res.headersSent) cutShort(this);
  }

  /**
   * The exchange stands in for its response as the target of informational answers when the
   * client's `Expect` went upstream (`expectEndToEnd`): its `100 Continue` may come from the
   * upstream, from the transport's fallback when the upstream stays silent, from a stage that
   * reads the body first (`transformRequest`, `retry`), or from each attempt of a retry. The client
   * gets one; node:http would write every one of them.
   */
  get headersSent(): boolean {
    return this.res.headersSent;
  }

  writeEarlyHints(hints: Record<string, string | string[]>): void {
    this.res.writeEarlyHints(hints);
  }

  writeContinue(): void {
    if (this.continued || this.res.headersSent) return;
    this.continued = true;
    this.res.writeContinue();
  }
}

function fail(exchange: HttpExchange, error: RelayError): void {
  // A refusal while the body is still coming (400 bad path or Host, 501 coding, an upstream error
  // mid-upload): kept alive, node would read and drop the rest of a body nobody wants, holding the
  // connection until requestTimeout. `Connection: close` instead, as nginx's own 400/501 and as
  // writeHead does for an early upstream answer. HTTP/2 drains the rest and closes the stream once
  // the answer is written, as for an early upstream answer: the attempt left the upload paused,
  // the client stuck on flow control and the request in flight for good.
  // (An HTTP/2 request need not say it has a body: `complete` is the one sign.)
  if (!exchange.http2) {
    if (bodyStillComing(exchange.req)) exchange.res.shouldKeepAlive = false;
  } else if (!exchange.req.complete && !exchange.res.headersSent) watchEarlyAnswer(exchange);
  if (exchange.onError !== null && !exchange.res.headersSent) {
    handOff(exchange, exchange.onError, error);
    return;
  }
  sendError(exchange.res, error);
}

/**
 * Whether the request has a body node has not read to its end. Not `!req.complete` alone: during
 * the request listener a bodiless GET is not `complete` yet either (node marks it just after).
 */
function bodyStillComing(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Gives an error to `dispatch`'s `onError`. A handler that throws (or rejects) must neither crash
 * the process nor leave the client unanswered: 500 and a log line, as `toConnect` does.
 */
function handOff(exchange: HttpExchange, onError: (error: RelayError) => void, error: RelayError): void {
  let result: unknown;
  try {
    result = onError(error);
  } catch (thrown) {
    onErrorFailed(exchange, error, thrown);
    return;
  }
  if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
    (result as PromiseLike<unknown>).then(undefined, (thrown: unknown) => onErrorFailed(exchange, error, thrown));
  }
}

function onErrorFailed(exchange: HttpExchange, error: RelayError, thrown: unknown): void {
  exchange.relay.logger.error(
    { method: exchange.req.method, code: error.code, error: thrown instanceof Error ? thrown.message : String(thrown) },
    'the onError handler given to relay.dispatch threw: answered 500',
  );
  sendError(exchange.res, new RelayError('ERR_INTERNAL', 'onError threw', { cause: thrown }));
}

/**
 * Runs the pipeline for one exchange and writes what it answers. An async function rather than
 * `.then(onResponse, onError)`: no closures per request, and a stage that throws instead of
 * rejecting lands in the same catch, never in the request listener.
 */
async function runPipeline(pipeline: Handler, exchange: HttpExchange, request: ProxyRequest): Promise<void> {
  let response: ProxyResponse;
  try {
    response = checkedResponse(await pipeline(request));
    if (answersAsGrpc(exchange, response)) response = await localGrpcAnswer(response, exchange.res);
  } catch (error) {
    settled(exchange);
    onPipelineError(exchange, error);
    return;
  }
  settled(exchange);
  try {
    writeResponse(exchange, response);
  } catch (error) {
    // Never an unhandled rejection from a request: log it and cut the connection.
    exchange.relay.logger.error({ method: exchange.req.method, error: (error as Error).message }, 'writing the response failed');
    response.body?.destroy();
    cutShort(exchange);
  }
}

/**
 * Whether a stage's own error answer (`errorCode`) goes to a gRPC call over HTTP/2, which reads
 * `grpc-status`, not the HTTP status: it is sent trailers-only, as the relay's own errors are
 * (Envoy converts every local reply to a gRPC request so). Only the `errorCode` read is per request.
 */
function answersAsGrpc(exchange: HttpExchange, response: ProxyResponse): boolean {
  return response.errorCode !== undefined && exchange.http2 && isLocalErrorAnswer(response) && answersGrpc(exchange.res);
}

function settled(exchange: HttpExchange): void {
  exchange.running = false;
  if (exchange.endDeferred) ended(exchange, 499, false);
}

/** The client's response is over: the event, and the stage waiting for what an app's `onError` sent. */
function ended(exchange: HttpExchange, status: number, finished: boolean): void {
  publishRequestEnd(exchange.relay.target, exchange.request, status, finished);
  const client = exchange.client!;
  if (client.appAnswersErrors) client.answered(status, declaredLength(exchange.res));
}

/**
 * The `Content-Length` the app's answer declared: set with `setHeader`, or given to `writeHead` as
 * an object, which node:http writes straight into the head without keeping it (`_header`).
 */
function declaredLength(res: ServerResponse): number | null {
  const set = res.getHeader('content-length');
  const written = (res as { _header?: unknown })._header;
  const text = set !== undefined ? String(set) : typeof written === 'string' ? /\r\ncontent-length:[ \t]*(\d+)/i.exec(written)?.[1] : undefined;
  const length = Number(text ?? Number.NaN);
  return Number.isSafeInteger(length) && length >= 0 ? length : null;
}

function onPipelineError(exchange: HttpExchange, error: unknown): void {
  const relayError = toRelayError(error);
  if (relayError.code === 'ERR_CLIENT_ABORTED' || exchange.res.destroyed) return;
  if (relayError.code === 'ERR_INTERNAL') {
    exchange.relay.logger.error(
      { method: exchange.req.method, code: relayError.code, error: relayError.message, cause: relayError.cause },
      'relay pipeline failed',
    );
  }
  fail(exchange, relayError);
}

function writeResponse(exchange: HttpExchange, response: ProxyResponse): void {
  const { res, relay } = exchange;
  const body = response.body as TaggedBody | null;
  if (res.destroyed || exchange.client!.aborted) {
    body?.destroy();
    // Aborted by the relay, not by the client's leaving (a shutdown's deadline, a stage's own
    // `client.abort(reason)`): the client is still connected and gets the reason's answer, never silence.
    const reason = exchange.client!.abortReason;
    if (!res.destroyed && reason !== null && reason.code !== 'ERR_CLIENT_ABORTED') fail(exchange, reason);
    return;
  }
  if (body !== null && body.destroyed && !body.readableEnded) {
    // A body that already failed would never emit again: the client would wait forever.
    fail(exchange, new RelayError('ERR_INTERNAL', 'the response body stream was destroyed before the response was written'));
    return;
  }
  // An answer before the upload ended (the upstream refused early): the rest of the body is never
  // read, so the connection cannot be reused. `Connection: close`, then closed (nginx, reply-from).
  try {
    writeHead(exchange, response);
  } catch (error) {
    body?.destroy();
    forgetResponseHeaders(res, response.headers);
    const relayError = new RelayError('ERR_INTERNAL', `invalid response head: ${(error as Error).message}`, { cause: error });
    relay.logger.error({ method: exchange.req.method, code: relayError.code, error: relayError.message }, 'cannot write the response head');
    fail(exchange, relayError);
    return;
  }
  if (body === null || exchange.req.method === 'HEAD') {
    body?.resume();
    res.end();
    return;
  }
  body[kExchange] = exchange;
  body.on('error', onResponseBodyError);
  body.on('close', onResponseBodyClose);
  // Nothing buffered yet (a stream such as SSE): send the head now rather than with the first byte.
  if (body.readableLength === 0 && !body.readableEnded) flushHead(exchange);
  if (response.trailers !== undefined && acceptsTrailers(exchange)) {
    pipeWithTrailers(exchange, body, response.trailers);
    return;
  }
  body.pipe(res);
  flushEventsThroughCompression(res as FlushableResponse, body, response.headers['content-type']);
}

/**
 * A head that failed half-way may have left some of the response's headers on `res` (node's
 * writeHead sets them one by one when the app set any; HTTP/2's are set here): the error answer
 * that follows carries the app's headers only, never part of the head that failed. A name both
 * set is dropped, as writeHead had replaced the app's value already.
 */
function forgetResponseHeaders(res: ServerResponse, headers: HeaderRecord): void {
  if (res.headersSent) return;
  for (const name in headers) res.removeHeader(name);
}

/**
 * Sends the head before any body byte. node:http's `flushHeaders()` writes the head as UTF-8,
 * so a latin1 byte of an upstream's header value (`é` as 0xE9) would reach the client as two;
 * an empty latin1 write sends the same head byte for byte. HTTP/2 heads are frames: its own flush.
 */
function flushHead(exchange: HttpExchange): void {
  if (exchange.http2) exchange.res.flushHeaders();
  else exchange.res.write('', 'latin1');
}

type FlushableResponse = ServerResponse & { flush?: () => void };

/**
 * A compressing middleware in front of the relay (`compression()`, which adds `res.flush`) holds
 * bytes until its buffer fills: an event stream's events would wait for the stream's end. Each
 * chunk is flushed after the pipe wrote it, as that middleware's docs ask of event streams.
 */
function flushEventsThroughCompression(res: FlushableResponse, body: Readable, contentType: HeaderValue | undefined): void {
  if (typeof res.flush !== 'function' || typeof contentType !== 'string' || !/^\s*text\/event-stream\b/i.test(contentType)) return;
  body.on('data', () => res.flush!());
}

/**
 * `Expect: 100-continue` goes upstream only when node:http has not answered it already, which is
 * when the server hands such requests to the relay through `server.on('checkContinue', relay.handle)`:
 * then the client gets the upstream's `100 Continue`, and an upstream that refuses first (a 401, a
 * 413) never receives a body it did not want. An upstream may also read the body without ever
 * sending 100 (HTTP/1.0 servers, RFC 9110 §10.1.1): once the request is upstream, the transport
 * sends the client a 100 itself after `continueWait` (1 s, curl's own wait) without a 100 or a head.
 * The exchange becomes the hints target so that the client gets one 100 whoever sends it.
 */
function expectEndToEnd(exchange: HttpExchange, request: ProxyRequest): void {
  if (answeredContinue(exchange) || !/^100-continue$/i.test(String(exchange.req.headers.expect))) return;
  request.headers.expect = '100-continue';
  // An HTTP/1.0 client gets no 1xx at all (its target stays unset in `start`).
  if (exchange.req.httpVersionMinor !== 0 || exchange.req.httpVersionMajor !== 1) request.client.setEarlyHintsTarget(exchange);
}

type H2Session = { server?: { listenerCount(event: string): number } };

/**
 * Whether node answered `100 Continue` before the relay saw the request. HTTP/1.1 marks it on
 * the response (`_sent100`); node:http2 keeps no mark, but answers it itself exactly when its
 * server has no `checkContinue` listener.
 */
function answeredContinue(exchange: HttpExchange): boolean {
  if (!exchange.http2) return (exchange.res as { _sent100?: boolean })._sent100 !== false;
  const session = (exchange.req as unknown as H2Request).stream.session;
  return (session?.server?.listenerCount('checkContinue') ?? 0) === 0;
}

/** HTTP/2 clients always take trailer fields; HTTP/1.1 ones when they said so (`TE: trailers`). */
function acceptsTrailers(exchange: HttpExchange): boolean {
  return exchange.http2 || /\btrailers\b/i.test(String(exchange.req.headers.te ?? ''));
}

/** Pipes the body, then writes the trailers the stages leave (a rare path: closures are fine). */
function pipeWithTrailers(exchange: HttpExchange, body: Readable, trailers: () => HeaderRecord | null): void {
  const res = exchange.res;
  body.pipe(res, { end: false });
  body.once('end', () => {
    try {
      const fields = trailers();
      if (fields !== null) res.addTrailers(fields as OutgoingHttpHeaders);
    } catch (error) {
      exchange.relay.logger.warn({ method: exchange.req.method, error: (error as Error).message }, 'invalid response trailers dropped');
    }
    res.end();
  });
}

function writeHead(exchange: HttpExchange, response: ProxyResponse): void {
  const { res, relay } = exchange;
  // A 204 has no body, and a Content-Length on it could make a client wait for bytes or take the
  // next response's as its own (RFC 9110 §8.6: a server MUST NOT send one; nginx drops it). An
  // HTTP/2 client (nghttp2: node, curl) resets such a stream with PROTOCOL_ERROR. A 304's may stay
  // (it states the selected representation's length; nghttp2 accepts it); a 1xx never gets here
  // as a final answer over HTTP/2 (node:http2 refuses its status: a 500 from the catch).
  if (response.status === 204 && response.headers['content-length'] !== undefined) delete response.headers['content-length'];
  if (exchange.http2) {
    // Status and headers are set, not written: node:http2 sends them with the first byte, or with
    // END_STREAM when there is no body (a trailers-only gRPC status), where writeHead sends at once.
    res.statusCode = response.status;
    // node:http2 ends a 205's stream with its HEADERS (no content, RFC 9110 §15.3.6): a length
    // the upstream gave it anyway would leave the client short of bytes (PROTOCOL_ERROR).
    if (response.status === 205 && response.headers['content-length'] !== undefined) delete response.headers['content-length'];
    if (relay.state === 'stopping') goAway(res);
    if (exchange.request!.body !== null && !exchange.req.complete) watchEarlyAnswer(exchange);
    const headers = withoutConnectionHeaders(response.headers);
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      // node:http2 sends CR/LF in a value, and the client drops the field unsaid; HTTP/1.1's
      // writeHead refuses it: the same 500 and log line on both fronts.
      validateHeaderValue(name, typeof value === 'string' ? value : value.join(','));
      if (name === 'set-cookie') keepAppCookies(res, value);
      else res.setHeader(name, value);
    }
    return;
  }
  if (relay.state === 'stopping' || (exchange.request!.body !== null && !exchange.req.complete)) res.shouldKeepAlive = false;
  let headers = response.headers;
  const cookies = headers['set-cookie'];
  if (cookies !== undefined) {
    // Set before writeHead, so an app hook that adds its cookie in writeHead (on-headers, as
    // express-session's) appends to these rather than being replaced by them.
    keepAppCookies(res, cookies);
    headers = { ...headers };
    delete headers['set-cookie'];
  }
  res.writeHead(response.status, response.statusMessage || undefined, headers as OutgoingHttpHeaders);
}

/**
 * The upstream's `Set-Cookie` lines go beside those the app set before the relay (a session
 * middleware in front of `relay.dispatch`), not over them: each cookie is its own field line
 * (RFC 6265 §3), and node's setHeader or writeHead would drop the app's. As Fastify's reply does.
 */
function keepAppCookies(res: ServerResponse, cookies: HeaderValue): void {
  const app = res.getHeader('set-cookie');
  if (app === undefined) {
    res.setHeader('set-cookie', cookies);
    return;
  }
  res.setHeader('set-cookie', [...lines(app), ...lines(cookies)]);
}

function lines(value: HeaderValue | number): string[] {
  return Array.isArray(value) ? value : [String(value)];
}

type H2Stream = { destroyed: boolean; session?: H2Session; state?: { localClose?: number }; close(code: number): void; [kExchange]?: HttpExchange };
type H2Request = IncomingMessage & { stream: H2Stream };

/**
 * An HTTP/2 answer sent before the upload ended (the upstream refused early). Once the answer is
 * written, the rest of the upload is read and dropped, so the client is never left blocked on flow
 * control; as soon as the answer's END_STREAM has gone out, the stream is reset with NO_ERROR, which
 * asks the client to stop sending (RFC 9113 §8.1, as nginx does). Left paused, the stream stayed
 * half-open for good: the request counted in flight and held up `shutdown()`. (HTTP/1.1 closes the
 * connection instead, which HTTP/2's other streams forbid.) A reset before END_STREAM went out
 * would drop the answer's last frames, hence the wait for it.
 */
function watchEarlyAnswer(exchange: HttpExchange): void {
  const stream = (exchange.req as unknown as H2Request).stream;
  stream[kExchange] = exchange;
  (stream as unknown as Readable).once('finish', onEarlyAnswerWritten);
}

function onEarlyAnswerWritten(this: H2Stream): void {
  const req = this[kExchange]!.req;
  if (req.complete || req.destroyed) return;
  req.unpipe();
  req.on('data', onDroppedUpload);
  req.resume();
  // A client that stopped sending (the one a 408 answers) brings no more DATA to close on: the
  // stream is closed once END_STREAM is out, checked every 10 ms, or after a second regardless.
  setTimeout(closeWhenAnswered, 10, this, 100);
}

function onDroppedUpload(this: H2Request): void {
  const stream = this.stream;
  if (stream.destroyed || stream.state?.localClose !== 1) return;
  this.off('data', onDroppedUpload);
  stream.close(http2Constants.NGHTTP2_NO_ERROR);
}

function closeWhenAnswered(stream: H2Stream, tries: number): void {
  if (stream.destroyed) return;
  if (stream.state?.localClose === 1 || tries === 0) stream.close(http2Constants.NGHTTP2_NO_ERROR);
  else setTimeout(closeWhenAnswered, 10, stream, tries - 1);
}

/**
 * HTTP/2 forbids connection-specific headers (RFC 9113 §8.2.2): a stage may have set one. node:http2
 * throws on each (`te` and `http2-settings` too) when it sends the head, which may be inside the
 * body's pipe, where nothing catches it.
 */
const connectionHeaders = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings'];

function withoutConnectionHeaders(headers: HeaderRecord): HeaderRecord {
  if (!connectionHeaders.some((name) => name in headers)) return headers;
  const kept = { ...headers };
  for (const name of connectionHeaders) delete kept[name];
  return kept;
}

type TaggedIncoming = IncomingMessage & { [kExchange]?: HttpExchange };

/**
 * An HTTP/2 client that resets its stream mid-upload (RST_STREAM without END_STREAM): node's
 * compatibility request emits `aborted`, then ends the body as if it were whole. The attempt is
 * torn down at `aborted`, before that end reaches the upstream as a complete, shorter body.
 */
function watchUploadReset(exchange: HttpExchange): void {
  (exchange.req as TaggedIncoming)[kExchange] = exchange;
  exchange.req.once('aborted', onUploadReset);
}

function onUploadReset(this: TaggedIncoming): void {
  this[kExchange]!.client?.abort();
}

function onClientClose(this: TaggedResponse): void {
  const exchange = this[kExchange]!;
  unwatchSocket(exchange);
  endExchange(exchange);
}

/**
 * The whole response reached the client. node:http2's compatibility response reports
 * `writableFinished` for a stream the client reset (RST_STREAM), so there the stream's own
 * reset code says it: NO_ERROR on a stream that ended, anything else on one cut short.
 */
function delivered(exchange: HttpExchange): boolean {
  const res = exchange.res;
  if (!exchange.http2) return res.writableFinished;
  const stream = (res as unknown as { stream?: { rstCode?: number } }).stream;
  return res.writableEnded && (stream?.rstCode ?? 0) === 0;
}

function endExchange(exchange: HttpExchange): void {
  const { res } = exchange;
  const complete = delivered(exchange);
  if (!complete) exchange.client!.abort();
  // The response's close and its socket's close may both end an exchange: publish its end once.
  const listed = exchange.listed;
  exchange.relay.finished(exchange);
  if (!listed) return;
  // The client left while the pipeline ran (no head yet): the aborted attempt reports first, then
  // the request, as 499 (nginx's "client closed request", what relay.fetch says), not node's default 200.
  if (exchange.running) exchange.endDeferred = true;
  else ended(exchange, res.headersSent ? res.statusCode : 499, complete);
}

/**
 * Node emits no `close` on a queued pipelined response whose client has gone: each exchange is
 * listed on its socket too, and the socket's `close` ends those still open. One array per
 * connection (usually holding one exchange), no listener per request.
 */
function watchSocket(exchange: HttpExchange): void {
  const socket = exchange.req.socket as TaggedSocket | null;
  if (socket === null) return;
  if (socket.closed) {
    endExchange(exchange);
    return;
  }
  let open = socket[kSocketExchanges];
  if (open === undefined) {
    open = socket[kSocketExchanges] = [];
    socket.on('close', onSocketClose);
  }
  open.push(exchange);
}

function unwatchSocket(exchange: HttpExchange): void {
  const open = (exchange.req.socket as TaggedSocket | null)?.[kSocketExchanges];
  if (open === undefined) return;
  const index = open.indexOf(exchange);
  if (index !== -1) open.splice(index, 1);
}

function onSocketClose(this: TaggedSocket): void {
  const open = this[kSocketExchanges];
  if (open === undefined) return;
  this[kSocketExchanges] = [];
  for (const exchange of open) endExchange(exchange);
}

function onResponseBodyError(this: TaggedBody, error: Error): void {
  const exchange = this[kExchange]!;
  const relayError = toRelayError(error);
  const client = exchange.client!;
  if (!client.aborted) {
    const request = exchange.request!;
    exchange.relay.logger.warn(
      {
        method: request.method,
        url: exchange.relay.target.origin + loggedPath(request.path, exchange.relay),
        attempt: request.attempt,
        code: relayError.code,
        error: relayError.message,
      },
      'upstream response failed after it started: client connection aborted',
    );
  }
  cutShort(exchange);
}

function onResponseBodyClose(this: TaggedBody): void {
  if (!this.readableEnded) cutShort(this[kExchange]!);
}

/**
 * A response whose body broke off must not look complete. HTTP/1.1: the connection is closed
 * before the body's end. HTTP/2: the stream is reset with INTERNAL_ERROR, as nginx and Envoy do;
 * node's `destroy()` would end it with NO_ERROR, which a client reads as a whole, shorter body.
 */
function cutShort(exchange: HttpExchange): void {
  const res = exchange.res;
  if (!exchange.http2) {
    res.destroy();
    return;
  }
  const stream = (res as unknown as { stream: { destroyed: boolean; close(code: number): void } }).stream;
  if (!stream.destroyed) stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
}
