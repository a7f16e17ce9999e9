import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { RelayError, toRelayError, type HeaderRecord, type ProxyRequest, type ProxyResponse, type UpgradeHandoff } from '@relay/core';
import { loggedPath, refuseUpgrade, responseHeadersFromRaw, type AbortHandler } from '@relay/core/transport';
import { closeReasons } from './close-codes.js';
import { attachCounts } from './counts.js';
import { extensionAnswerProblem } from './extension-answer.js';
import { closeFrame } from './frames.js';
import { clientHandshakeLines, headerText, isWritablePath, parseSubprotocols, stripUpstreamHandshakeHeaders, upstreamRequestHeaders } from './handshake-headers.js';
import { RawSession } from './raw-session.js';
import type { SessionHost } from './host.js';
import { answerTimeoutError, HandshakeTimers } from './handshake-timers.js';
import { timerDelay } from './timers.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const kRaw = Symbol('relay.ws.raw');
type Tagged<T> = T & { [kRaw]?: RawHandshake };
/** Tags a refusal with its upstream connection, which the response may let go of when it ends. */
const kConnection = Symbol('relay.ws.connection');
type Refusal = IncomingMessage & { [kConnection]?: Socket };

const enum State {
  Connecting,
  Offered,
  Done,
}

/** `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/**
 * The handshake of a transparent session: the upstream gets the request as the stages left it,
 * with the client's extension offer (permessage-deflate …) and its own key; the upstream's `101`
 * is checked (`Upgrade`, accept key, subprotocol, extensions the client offered with
 * permessage-deflate parameters it can accept) and its extensions are passed back to the client,
 * so the session can be relayed byte for byte. A refusal is the client's answer, as in a
 * terminating session.
 */
export class RawHandshake implements AbortHandler, UpgradeHandoff {
  state = State.Connecting;
  req: Tagged<ClientRequest> | null = null;
  rejection: IncomingMessage | null = null;
  /** The connect and answer deadlines. */
  readonly timers = new HandshakeTimers(this);
  /** The upstream's connection once it answered `101`, paused until the client is accepted. */
  upstream: Socket | null = null;
  upstreamHead: Buffer = Buffer.alloc(0);
  /** The upstream's `101` lines the client gets too: the subprotocol and extensions it chose. */
  negotiated: string[] = [];
  abortReason: RelayError | null = null;
  private readonly key = randomBytes(16).toString('base64');

  constructor(
    readonly binding: SessionHost,
    readonly request: ProxyRequest,
    /** The subprotocols the client itself offered. */
    readonly offered: readonly string[],
    readonly settle: (response: ProxyResponse) => void,
    readonly refuse: (error: RelayError) => void,
  ) {}

  start(): void {
    const { binding, request } = this;
    if (!isWritablePath(request.path)) {
      this.fail(new RelayError('ERR_BAD_PATH', 'the upstream path contains characters that cannot be sent'));
      return;
    }
    let headers: Record<string, string | string[]>;
    try {
      headers = this.upstreamHeaders();
    } catch (error) {
      this.fail(new RelayError('ERR_INTERNAL', `a stage set an invalid Sec-WebSocket-Protocol: ${(error as Error).message}`, { cause: error }));
      return;
    }
    binding.handshakes.add(this);
    request.client.setAbortHandler(this);
    if (this.state !== State.Connecting) return; // the client was already gone
    // A stage (a balancer, a router) may have chosen this handshake's target.
    const target = request.target ?? binding.config.target;
    const secure = target.protocol === 'https:';
    let req: Tagged<ClientRequest>;
    try {
      req = (secure ? httpsRequest : httpRequest)({
        ...binding.tlsOptions,
        host: target.hostname,
        port: target.port,
        socketPath: target.socketPath,
        method: 'GET',
        path: request.path,
        headers,
        agent: false,
      });
    } catch (error) {
      // Invalid header names or values set by a stage land here, before a connection is made.
      this.fail(new RelayError('ERR_INTERNAL', `cannot build the upstream handshake: ${(error as Error).message}`, { cause: error }));
      return;
    }
    req[kRaw] = this;
    this.req = req;
    req.on('socket', onRequestSocket);
    req.on('upgrade', onUpgrade);
    req.on('response', onResponse);
    req.on('error', onRequestError);
    req.on('timeout', onRequestTimeout);
    this.timers.startConnect(binding.config.timeouts.connect);
    req.end();
  }

  /** The request's headers as the stages left them, with the upgrade's own: a fresh key, the client's offers. */
  private upstreamHeaders(): Record<string, string | string[]> {
    const requestHeaders = this.request.headers;
    const relayTarget = this.binding.config.target;
    const headers = upstreamRequestHeaders(requestHeaders, { relay: relayTarget, chosen: this.request.target ?? relayTarget });
    headers.connection = 'Upgrade';
    headers.upgrade = 'websocket';
    headers['sec-websocket-key'] = this.key;
    headers['sec-websocket-version'] = '13';
    const protocols = parseSubprotocols(requestHeaders['sec-websocket-protocol']);
    if (protocols.length > 0) headers['sec-websocket-protocol'] = protocols.join(',');
    const extensions = requestHeaders['sec-websocket-extensions'];
    if (extensions !== undefined) headers['sec-websocket-extensions'] = extensions;
    return headers;
  }

  onConnected(): void {
    if (this.state !== State.Connecting || this.req === null) return;
    const read = this.binding.config.timeouts.read;
    this.timers.startAnswer(read);
    // The silence timer: it bounds the pauses in a refusal's body (the deadline bounds its head).
    if (read > 0) this.req.setTimeout(timerDelay(read));
  }

  onUpgrade(response: IncomingMessage, socket: Socket, head: Buffer): void {
    this.timers.clear();
    socket.on('error', onUpstreamError);
    (socket as Tagged<Socket>)[kRaw] = this;
    socket.on('close', onUpstreamClose);
    this.req = null;
    if (this.state !== State.Connecting) {
      socket.destroy();
      return;
    }
    socket.setTimeout(0);
    const problem = this.checkUpgrade(response);
    if (problem !== null) {
      socket.destroy();
      this.fail(new RelayError('ERR_UPSTREAM_PROTOCOL', `invalid upstream handshake: ${problem}`));
      return;
    }
    // Nothing is read from the upstream until the client is accepted.
    socket.pause();
    this.upstream = socket;
    this.upstreamHead = head;
    this.state = State.Offered;
    const headers = stripUpstreamHandshakeHeaders(responseHeadersFromRaw(response.rawHeaders));
    this.settle({ status: 101, statusMessage: response.statusMessage ?? '', headers, body: null, upgrade: this });
  }

  /** What is wrong with the upstream's `101`, or `null`; also keeps the lines the client gets. */
  private checkUpgrade(response: IncomingMessage): string | null {
    const headers = response.headers;
    if (headers.upgrade?.toLowerCase() !== 'websocket') return 'Invalid Upgrade header';
    if (headers['sec-websocket-accept'] !== acceptKey(this.key)) return 'Invalid Sec-WebSocket-Accept header';
    const protocol = headers['sec-websocket-protocol'];
    const offered = parseSubprotocols(this.request.headers['sec-websocket-protocol']);
    if (protocol !== undefined && !offered.includes(protocol)) return 'Server sent an invalid subprotocol';
    if (protocol === undefined && offered.length > 0) return 'Server sent no subprotocol';
    if (protocol !== undefined && !this.offered.includes(protocol)) {
      return `the upstream chose subprotocol "${protocol}", which the client did not offer`;
    }
    this.negotiated = [];
    if (protocol !== undefined) this.negotiated.push(`Sec-WebSocket-Protocol: ${protocol}`);
    const extensions = headers['sec-websocket-extensions'];
    if (extensions !== undefined) {
      // The payloads are relayed as they are, so the client judges this answer itself: one it must fail
      // (RFC 7692 §7.1) is refused here with 502 rather than passed on in a 101.
      const problem = extensionAnswerProblem(extensions, headerText(this.request.headers['sec-websocket-extensions']));
      if (problem !== null) return problem;
      this.negotiated.push(`Sec-WebSocket-Extensions: ${extensions}`);
    }
    return null;
  }

  onResponse(response: IncomingMessage): void {
    this.timers.clear();
    const socket = response.socket;
    socket.on('error', ignoreError);
    if (this.state !== State.Connecting) {
      socket.destroy();
      return;
    }
    if (response.statusCode === 101) {
      // Node hands over a 101 without `Upgrade` as a plain response: the upstream switched to nothing.
      socket.destroy();
      this.fail(new RelayError('ERR_UPSTREAM_PROTOCOL', 'invalid upstream handshake: 101 without "Upgrade: websocket"'));
      return;
    }
    this.state = State.Done;
    this.binding.handshakes.delete(this);
    this.request.client.setAbortHandler(null);
    // The connection served this one answer: the relay owns it and closes it once the answer is read.
    (response as Refusal)[kConnection] = socket;
    response.once('end', destroyConnection);
    response.once('close', destroyConnection);
    const status = response.statusCode ?? 502;
    const bodiless = status === 204 || status === 304;
    if (bodiless) response.resume();
    else {
      this.rejection = response;
      response.on('error', ignoreError);
    }
    this.settle({
      status,
      statusMessage: response.statusMessage ?? '',
      headers: responseHeadersFromRaw(response.rawHeaders),
      body: bodiless ? null : response,
    });
  }

  onRequestError(error: Error): void {
    if (this.state === State.Connecting) {
      this.fail(handshakeError(error));
      return;
    }
    const rejection = this.rejection;
    if (rejection !== null && !rejection.complete && !rejection.destroyed) rejection.destroy(toRelayError(error));
  }

  onTimeout(): void {
    const timeouts = this.binding.config.timeouts;
    if (this.state === State.Connecting) {
      this.fail(answerTimeoutError(timeouts.read));
      return;
    }
    this.rejection?.destroy(new RelayError('ERR_READ_TIMEOUT', `the upstream's answer stalled for ${timeouts.read} ms`));
  }

  onClientAbort(reason: RelayError): void {
    if (this.state === State.Connecting) this.fail(reason);
    else this.reject(reason);
  }

  /** The upstream's connection closed before the client was accepted: `accept` then refuses the client. */
  onUpstreamClose(): void {
    if (this.state === State.Offered && this.abortReason !== null) this.binding.handshakes.delete(this);
  }

  /** The hand-off's `reject`: the client will not be accepted, so the upstream is closed with 1001. Idempotent. */
  reject(reason: Error): void {
    if (this.state !== State.Offered || this.abortReason !== null) return;
    const relayError = toRelayError(reason);
    this.abortReason = relayError;
    this.request.client.setAbortHandler(null);
    this.binding.handshakes.delete(this);
    this.closeUpstream(relayError.code === 'ERR_SHUTTING_DOWN' ? closeReasons.shutdown : closeReasons.refused, 1001);
  }

  /** The hand-off's `accept`: answers the client's handshake, then joins the two connections. */
  accept(incoming: IncomingMessage, socket: Duplex, head: Buffer, headers: HeaderRecord): void {
    try {
      this.acceptClient(incoming, socket, head, headers);
    } catch (error) {
      // Called from the relay's promise chain: nothing may escape as an unhandled rejection.
      this.binding.config.logger.error({ path: loggedPath(this.request.path, this.binding.config), error: (error as Error).message }, 'websocket accept failed');
      this.giveUp(1011, closeReasons[1011]);
      socket.destroy();
    }
  }

  private acceptClient(incoming: IncomingMessage, socket: Duplex, head: Buffer, headers: HeaderRecord): void {
    const upstream = this.upstream;
    if (this.state !== State.Offered || this.abortReason !== null || upstream === null || upstream.destroyed) {
      const reason = this.abortReason ?? new RelayError('ERR_UPSTREAM_RESET', 'the upstream closed the connection during the handshake');
      if (this.state === State.Offered) this.giveUp(1001, closeReasons.refused);
      refuseUpgrade(socket, reason, null);
      return;
    }
    let lines: string[];
    try {
      lines = clientHandshakeLines(headers);
    } catch (error) {
      this.binding.config.logger.error({ path: loggedPath(this.request.path, this.binding.config), error: (error as Error).message }, 'cannot write the websocket handshake response head');
      this.giveUp(1011, closeReasons[1011]);
      refuseUpgrade(socket, new RelayError('ERR_INTERNAL', 'invalid handshake response head', { cause: error }), null);
      return;
    }
    const key = incoming.headers['sec-websocket-key'];
    if (!socket.readable || !socket.writable || typeof key !== 'string') {
      this.giveUp(1001, closeReasons.clientLost);
      socket.destroy();
      return;
    }
    this.state = State.Done;
    this.request.client.setAbortHandler(null);
    this.binding.handshakes.delete(this);
    (upstream as Tagged<Socket>)[kRaw] = undefined;
    upstream.removeListener('error', onUpstreamError);
    upstream.removeListener('close', onUpstreamClose);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n${[...this.negotiated, ...lines].map((line) => `${line}\r\n`).join('')}\r\n`,
    );
    attachCounts(this.request.client, new RawSession(this.binding, socket, head, upstream, this.upstreamHead, this.request.path));
  }

  /** Ends a handshake whose client will not be accepted after all. */
  private giveUp(code: number, reason: string): void {
    this.state = State.Done;
    this.request.client.setAbortHandler(null);
    this.binding.handshakes.delete(this);
    this.closeUpstream(reason, code);
  }

  /** Sends the upstream a close frame and ends its connection; destroyed if it does not close in closeTimeout. */
  private closeUpstream(reason: string, code: number): void {
    const upstream = this.upstream;
    if (upstream === null || upstream.destroyed) return;
    upstream.resume();
    upstream.end(closeFrame(code, reason, true));
    // A fixed deadline, not the socket's silence timer: an upstream that keeps sending after the close
    // frame would reset that one forever (and hold the process past shutdown).
    const deadline = setTimeout(destroySocket, timerDelay(this.binding.settings.closeTimeout), upstream);
    upstream.once('close', () => clearTimeout(deadline));
  }

  /** Fails the handshake before the `101`: the relay answers the client with the error's status. */
  fail(error: RelayError): void {
    if (this.state !== State.Connecting) return;
    this.state = State.Done;
    this.timers.clear();
    this.binding.handshakes.delete(this);
    this.request.client.setAbortHandler(null);
    const req = this.req;
    this.req = null;
    if (req !== null) {
      req.on('error', ignoreError);
      req.destroy();
    }
    this.refuse(error);
  }
}

/** Maps a failure before the upstream's `101` to a `RelayError`. */
function handshakeError(error: Error): RelayError {
  const relayError = toRelayError(error);
  if (relayError.code !== 'ERR_INTERNAL') return relayError;
  return new RelayError('ERR_UPSTREAM_PROTOCOL', `invalid upstream handshake: ${error.message}`, { cause: error });
}

function ignoreError(): void {}

function destroySocket(socket: Duplex): void {
  socket.destroy();
}

/** A refusal's `end`/`close`: its upstream connection is never reused. */
function destroyConnection(this: Refusal): void {
  this[kConnection]?.destroy();
}

function onRequestSocket(this: Tagged<ClientRequest>, socket: Tagged<Socket>): void {
  const handshake = this[kRaw]!;
  if (!socket.connecting) {
    handshake.onConnected();
    return;
  }
  socket[kRaw] = handshake;
  // The target this handshake goes to (a stage's choice may differ from the relay's: https relay, unix: target).
  const target = handshake.request.target ?? handshake.binding.config.target;
  socket.once(target.protocol === 'https:' ? 'secureConnect' : 'connect', onSocketConnected);
}

function onSocketConnected(this: Tagged<Socket>): void {
  const handshake = this[kRaw];
  // The socket outlives the handshake (it carries the session): it must not keep it alive.
  this[kRaw] = undefined;
  handshake?.onConnected();
}

function onUpgrade(this: Tagged<ClientRequest>, response: IncomingMessage, socket: Socket, head: Buffer): void {
  this[kRaw]!.onUpgrade(response, socket, head);
}

function onResponse(this: Tagged<ClientRequest>, response: IncomingMessage): void {
  this[kRaw]!.onResponse(response);
}

function onRequestError(this: Tagged<ClientRequest>, error: Error): void {
  this[kRaw]?.onRequestError(error);
}

function onRequestTimeout(this: Tagged<ClientRequest>): void {
  this[kRaw]?.onTimeout();
}

function onUpstreamError(this: Tagged<Socket>): void {
  this.destroy();
}

function onUpstreamClose(this: Tagged<Socket>): void {
  this[kRaw]?.onUpstreamClose();
}
