import { STATUS_CODES, validateHeaderName, validateHeaderValue, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ClientInfo } from '../request/client.js';
import { RelayError, toRelayError } from '../errors.js';
import { loggedPath } from '../logger.js';
import { checkedResponse, errorBody, withErrorHeaders } from './respond.js';
import { publishRequestEnd, publishRequestStart, publishWebSocketOpen } from '../events.js';
import type { InFlight } from './in-flight.js';
import type { ExchangeHost } from './host.js';
import type { Handler, HeaderRecord, Logger, ProxyRequest, ProxyResponse } from '../types.js';

/**
 * One WebSocket handshake while it goes through the stages: the client socket waits, unanswered,
 * until the pipeline resolves; then the upstream's `101` is handed to the WebSocket transport to
 * accept the client, or whatever else came back is written to the socket as a plain HTTP answer.
 */
export class UpgradeExchange implements InFlight {
  previousInFlight: InFlight | null = null;
  nextInFlight: InFlight | null = null;
  listed = false;
  client: ClientInfo | null = null;
  request: ProxyRequest | null = null;
  private settled = false;
  /** What the client sent after its handshake, before the answer: the session's first bytes. */
  private readonly early: Buffer[] = [];
  private earlyLength = 0;
  /** The client left while the handshake was in the stages: whatever is pending upstream is aborted. */
  private readonly onClientGone = (): void => this.client?.abort();
  private readonly onClientData = (chunk: Buffer): void => this.keep(chunk);

  constructor(
    readonly relay: ExchangeHost,
    readonly req: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
  ) {
    // A handshake is a cold path (once per session): plain closures, no symbol tags.
    socket.on('error', destroySocket);
  }

  start(pipeline: Handler, request: ProxyRequest): void {
    this.relay.track(this);
    this.request = request;
    publishRequestStart(this.relay.target, request, true);
    this.watchClient();
    let pending: Promise<ProxyResponse>;
    try {
      pending = pipeline(request);
    } catch (error) {
      // A stage that throws instead of rejecting must not crash the process from an upgrade listener.
      this.onError(error);
      return;
    }
    pending.then(checkedResponse).then(
      (response) => this.onResponse(response, request),
      (error: unknown) => this.onError(error),
    );
  }

  /** Answers an error before the pipeline ran, on the raw socket. */
  refuse(error: RelayError): void {
    refuseUpgrade(this.socket, error, null);
  }

  abortForShutdown(reason: RelayError): void {
    this.client?.abort(reason);
    if (!this.settled) refuseUpgrade(this.socket, reason, null);
  }

  /**
   * Reads the client while the handshake is pending, so that its leaving is seen. Node hands over
   * an upgraded socket unread and half-open: a client's FIN (a closed tab, its own handshake
   * timeout) is never read, never closes the socket, and the upstream handshake, with this request
   * in flight, would wait for `timeout.read` (nginx sees the FIN and closes the upstream at once).
   * What the client sends meanwhile is kept for the session, in order; past the socket's
   * high-water mark (a client must wait for the 101, RFC 6455 §4.1) it is read no further, so a
   * flood costs no memory and only the socket's close is seen.
   */
  private watchClient(): void {
    this.socket.on('close', this.onClientGone);
    this.socket.on('end', this.onClientGone);
    this.socket.on('data', this.onClientData);
  }

  private keep(chunk: Buffer): void {
    this.early.push(chunk);
    this.earlyLength += chunk.length;
    if (this.earlyLength >= this.socket.readableHighWaterMark) this.socket.pause();
  }

  private settle(): void {
    this.settled = true;
    const socket = this.socket;
    socket.removeListener('close', this.onClientGone);
    socket.removeListener('end', this.onClientGone);
    socket.removeListener('data', this.onClientData);
    // Unread again, neither flowing nor paused, as node's server hands it over (it sets the same
    // field): whoever takes the socket next (`ws`, the transparent session, the answer's writer)
    // starts reading it by listening for `data`, and nothing is read until then.
    socket.pause();
    (socket as { readableFlowing: boolean | null }).readableFlowing = null;
    this.relay.finished(this);
  }

  /** The upgrade's head with what the client sent while the handshake was pending. */
  private sessionHead(): Buffer {
    return this.early.length === 0 ? this.head : Buffer.concat([this.head, ...this.early], this.head.length + this.earlyLength);
  }

  private onResponse(response: ProxyResponse, request: ProxyRequest): void {
    const client = this.client!;
    // A client that closed, or sent its FIN (it can send no frame), during the handshake is gone.
    if (this.socket.destroyed || this.socket.readableEnded || client.aborted) {
      this.end(response, client.abortReason ?? new RelayError('ERR_CLIENT_ABORTED', 'client went away during the handshake'));
      return;
    }
    if (response.status === 101 && response.upgrade !== undefined) {
      this.accept(response, request);
      return;
    }
    // A 101 no WebSocket transport stands behind: never switch protocols on nothing.
    this.end(response, response.status === 101 ? this.noHandOff(request) : null);
  }

  private onError(error: unknown): void {
    const relayError = toRelayError(error);
    if (relayError.code === 'ERR_INTERNAL') {
      this.relay.logger.error({ method: this.req.method, code: relayError.code, error: relayError.message }, 'relay pipeline failed');
    }
    this.end(null, relayError);
  }

  /** The upstream switched protocols and the client is still here: the session begins. */
  private accept(response: ProxyResponse, request: ProxyRequest): void {
    this.settle();
    this.socket.removeListener('error', destroySocket);
    response.upgrade!.accept(this.req, this.socket, this.sessionHead(), response.headers);
    publishWebSocketOpen(this.relay.target, request, this.socket);
    publishRequestEnd(this.relay.target, request, 101, true);
  }

  /**
   * The one way a handshake ends without a session, whatever ended it (the client left, a stage
   * answered instead of the upstream's 101, the pipeline failed): the transport's hand-off is
   * rejected and, through the client's abort handler, any upstream connection it opened is
   * closed; then the client gets `error` as a plain HTTP answer (nothing when it is gone), or the
   * response the stages chose.
   */
  private end(response: ProxyResponse | null, error: RelayError | null): void {
    const reason = error ?? new RelayError('ERR_CLIENT_ABORTED', `the handshake was answered with ${response!.status}`);
    response?.upgrade?.reject(reason);
    this.client?.abort(reason);
    if (!this.settled) this.settle();
    if (error === null) {
      publishRequestEnd(this.relay.target, this.request, response!.status, true);
      writeRawResponse(this.socket, response!, this.relay.logger);
      return;
    }
    response?.body?.destroy();
    const gone = error.code === 'ERR_CLIENT_ABORTED';
    publishRequestEnd(this.relay.target, this.request, gone ? 499 : error.status, false);
    if (gone) this.socket.destroy();
    else refuseUpgrade(this.socket, error, null);
  }

  private noHandOff(request: ProxyRequest): RelayError {
    this.relay.logger.error({ method: request.method, path: loggedPath(request.path, this.relay) }, 'a stage returned 101 without an upgrade hand-off');
    return new RelayError('ERR_INTERNAL', '101 without an upgrade hand-off');
  }
}

function destroySocket(this: Duplex): void {
  this.destroy();
}

/**
 * Answers a WebSocket handshake with a plain HTTP error and closes the socket: the short,
 * address-free body of `error`, `Connection: close`. Logs it when a logger is given.
 *
 * @example
 * server.on('upgrade', (req, socket) => refuseUpgrade(socket, new RelayError('ERR_NOT_MOUNTED', 'no route'), null));
 */
export function refuseUpgrade(socket: Duplex, error: RelayError, logger: Logger | null): void {
  if (logger !== null) logger.warn({ code: error.code }, error.message);
  if (socket.listenerCount('error') === 0) socket.on('error', destroySocket);
  if (!socket.writable || socket.destroyed) {
    socket.destroy();
    return;
  }
  const body = errorBody(error);
  const headers = withErrorHeaders({ 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store', connection: 'close' }, error);
  socket.end(`HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n${headerLines(headers)}\r\n${body}`);
}

/**
 * Writes a non-101 answer to a handshake (the upstream's 401, a stage's 403 …) on the raw
 * socket, body included, then closes it. Header names and values are validated first.
 */
function writeRawResponse(socket: Duplex, response: ProxyResponse, logger: Logger): void {
  let head: string;
  try {
    head = `HTTP/1.1 ${response.status} ${response.statusMessage || STATUS_CODES[response.status] || ''}\r\n${headerLines(response.headers)}connection: close\r\n\r\n`;
  } catch (error) {
    response.body?.destroy();
    logger.error({ error: (error as Error).message }, 'cannot write the handshake response head');
    refuseUpgrade(socket, new RelayError('ERR_INTERNAL', 'invalid handshake response head', { cause: error }), null);
    return;
  }
  const body = response.body;
  if (body === null) {
    socket.end(head);
    return;
  }
  socket.write(head);
  body.on('error', () => socket.destroy());
  // Read (and drop) what the client sends, so its leaving is seen even while the body stalls. The
  // client closing its side means it is gone (nginx reads it so too), and the answer with it; a
  // client that leaves before the body ends must not keep the upstream connection open.
  socket.on('end', () => {
    if (!body.readableEnded) socket.destroy();
  });
  socket.on('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  socket.resume();
  body.pipe(socket);
}

function headerLines(headers: HeaderRecord): string {
  let lines = '';
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    validateHeaderName(name);
    for (const one of typeof value === 'string' ? [value] : value) {
      validateHeaderValue(name, one);
      lines += `${name}: ${one}\r\n`;
    }
  }
  return lines;
}
