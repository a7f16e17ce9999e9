import type { IncomingMessage } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import type { ClientInfo } from '../request/client.js';
import { RelayError, toRelayError } from '../errors.js';
import { publishRequestEnd, publishRequestStart } from '../events.js';
import type { Handler, HeaderRecord, ProxyRequest, ProxyResponse } from '../types.js';
import type { FetchClient } from './api.js';
import type { Exchange } from './front.js';
import type { ExchangeHost } from './host.js';
import type { InFlight } from './in-flight.js';
import { errorBody, withErrorHeaders } from './respond.js';

/** Statuses a WHATWG `Response` must have a null body for (the Fetch standard's null body statuses). */
const nullBodyStatuses: ReadonlySet<number> = new Set([101, 103, 204, 205, 304]);

/** A Web `Request` as the relay's front reads it; `refusal` when it cannot be relayed at all. */
export interface FetchIncoming {
  incoming: IncomingMessage;
  target: string;
  refusal: RelayError | null;
}

/**
 * A Web `Request` read as the node:http request the relay's front expects: its method, target,
 * raw headers, and its body as a Node stream (streamed, never buffered). No socket: the
 * client's address comes from `FetchClient`. A body already read (or being read) is refused
 * (`ERR_BODY_CONSUMED`), as the other doors refuse a body a parser read before the relay.
 */
export function incomingOf(request: Request, client: FetchClient): FetchIncoming {
  const url = new URL(request.url);
  // GET and HEAD never have a body in the Fetch standard: not asking spares a lazy `Request`
  // (@hono/node-server's) building a whole undici Request per call only to answer null.
  let webBody = request.method === 'GET' || request.method === 'HEAD' ? null : request.body;
  let refusal: RelayError | null = null;
  if (webBody !== null && (request.bodyUsed || webBody.locked)) {
    // `await request.json()` before `relay.fetch`: reading it again would throw "ReadableStream is locked".
    refusal = new RelayError('ERR_BODY_CONSUMED', 'the Request body was already read before relay.fetch: pass the Request on unread');
    webBody = null;
  }
  // The framing is the relay's to choose, from the body it really has: a `Content-Length` that
  // no body backs (or a `Transfer-Encoding`) would leave the upstream waiting for bytes that never
  // come, or reading the next request on the connection as this one's body.
  const length = webBody === null ? null : request.headers.get('content-length');
  const rawHeaders: string[] = [];
  request.headers.forEach((value, name) => {
    if (name !== 'content-length' && name !== 'transfer-encoding') rawHeaders.push(name, value);
  });
  // `Host` is a forbidden header of the Fetch standard: the URL's authority is the client's Host.
  if (!request.headers.has('host')) rawHeaders.push('host', url.host);
  let body: Readable;
  if (webBody === null) body = Readable.from([]);
  else if (length !== null && /^\d{1,15}$/.test(length)) {
    rawHeaders.push('content-length', length);
    const source = Readable.fromWeb(webBody as NodeWebStream<Uint8Array>);
    body = source.pipe(new LengthGuard(Number(length), source));
  } else {
    // A streamed body without a (valid) length: the relay frames it as chunked, as it does an HTTP/2 body.
    rawHeaders.push('transfer-encoding', 'chunked');
    body = Readable.fromWeb(webBody as NodeWebStream<Uint8Array>);
  }
  const target = url.pathname + url.search;
  const socket = { remoteAddress: client.address ?? '', localPort: Number(url.port) || (url.protocol === 'https:' ? 443 : 80), encrypted: url.protocol === 'https:' };
  Object.assign(body, { method: request.method, url: target, rawHeaders, headers: {}, rawTrailers: [], trailers: {}, socket, httpVersion: '1.1', httpVersionMajor: 1, complete: false });
  body.once('end', () => Object.assign(body, { complete: true }));
  return { incoming: body as unknown as IncomingMessage, target, refusal };
}

/**
 * One `relay.fetch` call while it is served: the pipeline's response becomes a Web `Response`
 * whose body streams the upstream's; the caller's `AbortSignal`, or cancelling the response
 * body, aborts the upstream attempt. The exchange is the signal's abort listener itself
 * (`handleEvent`), removed when it ends: one signal often outlives many calls (a server's
 * shutdown signal), and a listener left on it would keep each call's state alive with it.
 */
export class FetchExchange implements Exchange, InFlight {
  previousInFlight: InFlight | null = null;
  nextInFlight: InFlight | null = null;
  listed = false;
  client: ClientInfo | null = null;
  private request: ProxyRequest | null = null;
  private ended = false;

  constructor(
    readonly relay: ExchangeHost,
    readonly req: IncomingMessage,
    private readonly signal: AbortSignal | null,
    private readonly answer: (response: Response) => void,
  ) {}

  start(pipeline: Handler, request: ProxyRequest): void {
    this.request = request;
    this.relay.track(this);
    publishRequestStart(this.relay.target, request, false);
    const signal = this.signal;
    if (signal !== null) {
      if (signal.aborted) request.client.abort();
      else signal.addEventListener('abort', this, { once: true });
    }
    pipeline(request)
      .then((response) => this.respond(response))
      // A response the Web API refuses, or a stage's failure: an error Response, never a rejection nobody handles.
      .catch((error: unknown) => this.fail(toRelayError(error)));
  }

  refuse(error: RelayError): void {
    // Never read: the Request's body stream is released (cancelled) rather than left locked.
    this.req.destroy();
    this.answer(errorResponse(error));
  }

  /** The caller's `AbortSignal` fired. */
  handleEvent(): void {
    this.abort();
  }

  abortForShutdown(reason: RelayError): void {
    this.client?.abort(reason);
  }

  private respond(response: ProxyResponse): void {
    const body = response.body;
    if (this.client?.aborted === true) {
      body?.destroy();
      // The promise always settles: a caller that aborted gets a 499 nobody reads; one the relay
      // aborted (a shutdown's deadline, a stage's `client.abort(reason)`) gets the reason's answer.
      this.fail(this.client.abortReason ?? new RelayError('ERR_CLIENT_ABORTED', 'the caller aborted'));
      return;
    }
    if (body === null || nullBodyStatuses.has(response.status)) {
      // A Web Response refuses a body on these statuses (205 Reset Content among them): whatever
      // came is read to its end, so the answer counts as whole (a destroyed body reads as cut off).
      body?.resume();
      this.end(response.status, true);
      this.answer(new Response(null, responseInit(response)));
      return;
    }
    body.once('end', () => this.end(response.status, true));
    body.once('close', () => this.end(response.status, body.readableEnded));
    const stream = Readable.toWeb(body) as unknown as ReadableStream<Uint8Array>;
    this.answer(new Response(stream, responseInit(response)));
  }

  private fail(error: RelayError): void {
    this.end(error.code === 'ERR_CLIENT_ABORTED' ? 499 : error.status, false);
    this.answer(errorResponse(error));
  }

  private abort(): void {
    this.client?.abort();
    this.req.destroy();
  }

  private end(status: number, completed: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.signal?.removeEventListener('abort', this);
    // The upstream answered (or the attempt failed) before the whole body went, a 413 or a 401: the
    // rest goes nowhere, and the Request's stream is cancelled so its source (a file, a generator, a
    // runtime's socket) is released. A bodiless call (a GET) has nothing to release.
    if (this.request !== null && this.request.body !== null && !this.req.readableEnded) this.req.destroy();
    this.relay.finished(this);
    publishRequestEnd(this.relay.target, this.request, status, completed);
  }
}

/** The relay's short error answer as a Web `Response`. */

/** A reason phrase a Web `Response` takes (RFC 9112 §4: HTAB, SP, VCHAR, obs-text); any other throws there. */
const reasonPhrase = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Status, reason phrase (the upstream's, as an HTTP client gets it) and headers of the Web `Response`. */
function responseInit(response: ProxyResponse): ResponseInit {
  const statusText = response.statusMessage;
  return { status: response.status, statusText: reasonPhrase.test(statusText) ? statusText : '', headers: webHeaders(response.headers) };
}

function errorResponse(error: RelayError): Response {
  const headers = withErrorHeaders({ 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, error);
  return new Response(errorBody(error), { status: error.status, headers });
}

function webHeaders(headers: HeaderRecord): Headers {
  const web = new Headers();
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') web.append(name, value);
    else for (const one of value) web.append(name, one);
  }
  return web;
}

/**
 * Passes a body on while it keeps to the `Content-Length` it came with: more bytes, or an end
 * before the length, fail the body (the attempt is aborted) instead of desynchronizing the
 * upstream connection the relay reuses.
 */
class LengthGuard extends Transform {
  private left: number;

  constructor(
    length: number,
    private readonly source: Readable,
  ) {
    super();
    this.left = length;
  }

  /** The guard ends with its source: destroying the body the relay reads cancels the Web stream under it. */
  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    // Without the error: the source has no 'error' listener, and the guard carries the failure.
    this.source.destroy();
    done(error);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.left -= chunk.length;
    if (this.left < 0) done(new RelayError('ERR_BAD_REQUEST', 'the Request body is longer than its Content-Length'));
    else done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    done(this.left === 0 ? null : new RelayError('ERR_BAD_REQUEST', 'the Request body ended before its Content-Length'));
  }
}
