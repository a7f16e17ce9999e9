import type { ClientRequest, IncomingMessage } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { loggedPath } from '@relay/core/transport';
import { RelayError, toRelayError, type HeaderRecord, type ProxyRequest, type ProxyResponse, type Target, type UpgradeHandoff } from '@relay/core';
import { refuseUpgrade, responseHeadersFromRaw, type AbortHandler } from '@relay/core/transport';
import { closeOpen, closeReasons } from './close-codes.js';
import { attachCounts } from './counts.js';
import { clientHandshakeLines, isWritablePath, parseSubprotocols, stripUpstreamHandshakeHeaders, upstreamRequestHeaders } from './handshake-headers.js';
import { ReceiverGate } from './receiver-gate.js';
import { Session, type PendingMessage, type UpstreamEnd } from './session.js';
import { sessionDeadline } from './policy.js';
import type { SessionHost } from './host.js';
import { answerTimeoutError, HandshakeTimers } from './handshake-timers.js';
import { timerDelay } from './timers.js';

/** Where the handshake is: opening the upstream, waiting for the relay to accept the client, or over. */
const enum State {
  Connecting,
  Offered,
  Done,
}

/** @internal Tags the upstream WebSocket, its request and socket, and the client's request with their handshake. */
export const kHandshake = Symbol('relay.ws.handshake');
type Tagged<T> = T & { [kHandshake]?: UpstreamHandshake };
/** Tags a refusal with its upstream connection, which the response may let go of when it ends. */
const kConnection = Symbol('relay.ws.connection');
type Refusal = IncomingMessage & { [kConnection]?: Duplex };

/**
 * One WebSocket handshake on the upstream side: opens the upstream connection with the request
 * as the stages left it, under the relay's connect and read timeouts, and resolves with the
 * upstream's `101` (and an `upgrade` hand-off, which is this object) or its rejection. Until the
 * relay accepts the client, the upstream is paused and what it sends is kept in order.
 */
export class UpstreamHandshake implements AbortHandler, UpgradeHandoff {
  state = State.Connecting;
  upstream: Tagged<WebSocket> | null = null;
  req: Tagged<ClientRequest> | null = null;
  rejection: IncomingMessage | null = null;
  /** The connect and answer deadlines. */
  readonly timers = new HandshakeTimers(this);
  statusMessage = '';
  headers: HeaderRecord = {};
  /** Messages the upstream sent before the client was accepted. */
  readonly pending: PendingMessage[] = [];
  /** How the upstream ended before the client was accepted, if it did. */
  ended: UpstreamEnd | null = null;
  /** Why the relay gave up on the handshake after the `101`; `accept` then refuses the client. */
  abortReason: RelayError | null = null;
  /** The extra lines of the client's `101` while `ws` writes it. */
  clientLines: string[] = [];
  session: Session | null = null;
  /** The connections under the two WebSockets, whose write progress the session watches. */
  upstreamSocket: Duplex | null = null;
  clientSocket: Duplex | null = null;
  /** When the session must end by the policy's `deadline`, in ms since the epoch. */
  deadline: number | null = null;

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
    let protocols: string[];
    let upstream: Tagged<WebSocket>;
    try {
      const policy = binding.settings.policy;
      if (policy !== null) this.deadline = sessionDeadline(policy, request);
    } catch (error) {
      this.fail(new RelayError('ERR_INTERNAL', `websocket deadline() failed: ${(error as Error).message}`, { cause: error }));
      return;
    }
    try {
      protocols = parseSubprotocols(request.headers['sec-websocket-protocol']);
    } catch (error) {
      this.fail(new RelayError('ERR_INTERNAL', `a stage set an invalid Sec-WebSocket-Protocol: ${(error as Error).message}`, { cause: error }));
      return;
    }
    binding.handshakes.add(this);
    request.client.setAbortHandler(this);
    if (this.state !== State.Connecting) return; // the client was already gone
    try {
      // The address is the target's origin only: `finishRequest` puts the request's path on the
      // request line exactly as it is, so no URL parser re-encodes it.
      const chosen = request.target ?? binding.config.target;
      upstream = new WebSocket(chosen === binding.config.target ? binding.address : addressOf(chosen), protocols, {
        ...(chosen.socketPath === undefined ? binding.clientOptions : { ...binding.clientOptions, createConnection: unixConnection(chosen.socketPath) }),
        headers: upstreamRequestHeaders(request.headers, { relay: binding.config.target, chosen }) as Record<string, string>,
        finishRequest: (req: ClientRequest) => this.finishRequest(req),
      });
    } catch (error) {
      // Invalid header names or values set by a stage land here, before a connection is made.
      this.fail(new RelayError('ERR_INTERNAL', `cannot build the upstream handshake: ${(error as Error).message}`, { cause: error }));
      return;
    }
    upstream[kHandshake] = this;
    this.upstream = upstream;
    upstream.on('upgrade', onUpstreamUpgrade);
    upstream.on('open', onUpstreamOpen);
    upstream.on('unexpected-response', onUpstreamRejection);
    upstream.on('message', onPendingMessage);
    upstream.on('error', onHandshakeError);
    upstream.on('close', onHandshakeClose);
  }

  finishRequest(req: Tagged<ClientRequest>): void {
    req.path = this.request.path;
    req[kHandshake] = this;
    this.req = req;
    req.on('socket', onRequestSocket);
    req.on('timeout', onRequestTimeout);
    this.timers.startConnect(this.binding.config.timeouts.connect);
    req.end();
  }

  onConnected(): void {
    if (this.state !== State.Connecting || this.req === null) return;
    const read = this.binding.config.timeouts.read;
    this.timers.startAnswer(read);
    // The silence timer: it bounds the pauses in a refusal's body (the deadline bounds its head).
    if (read > 0) this.req.setTimeout(timerDelay(read));
  }

  onUpgrade(response: IncomingMessage): void {
    this.statusMessage = response.statusMessage ?? '';
    this.headers = stripUpstreamHandshakeHeaders(responseHeadersFromRaw(response.rawHeaders));
  }

  onOpen(): void {
    const upstream = this.upstream!;
    this.timers.clear();
    this.req = null;
    if (this.state !== State.Connecting) {
      upstream.terminate();
      return;
    }
    const protocol = upstream.protocol;
    if (protocol !== '' && !this.offered.includes(protocol)) {
      // A stage offered the upstream a subprotocol the client did not: the two cannot agree.
      closeOpen(upstream, 1002, closeReasons[1002]);
      this.fail(new RelayError('ERR_UPSTREAM_PROTOCOL', `the upstream chose subprotocol "${protocol}", which the client did not offer`));
      return;
    }
    // Nothing is read from the upstream until the client is accepted.
    upstream.pause();
    // Before any data event: the gate must see the link's bytes from the first.
    ReceiverGate.install(upstream);
    this.state = State.Offered;
    this.settle({ status: 101, statusMessage: this.statusMessage, headers: this.headers, body: null, upgrade: this });
  }

  onRejection(response: IncomingMessage): void {
    this.timers.clear();
    if (this.state !== State.Connecting) {
      response.destroy();
      return;
    }
    if (response.statusCode === 101) {
      // Node hands over a 101 without `Upgrade` as a plain response: the upstream switched to
      // nothing, so there is no session to relay and no answer to pass on (nginx: 502).
      response.socket.on('error', ignoreError);
      response.socket.destroy();
      this.fail(new RelayError('ERR_UPSTREAM_PROTOCOL', 'invalid upstream handshake: 101 without "Upgrade: websocket"'));
      return;
    }
    this.state = State.Done;
    this.binding.handshakes.delete(this);
    this.request.client.setAbortHandler(null);
    // The upstream's connection served this one answer: the relay owns it and closes it once the
    // answer is read, whatever its keep-alive says (nothing else would ever close or watch it).
    const socket = response.socket;
    socket.on('error', ignoreError);
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
    // The read timeout keeps running while the body streams: a stalled body fails the client.
    this.settle({
      status,
      statusMessage: response.statusMessage ?? '',
      headers: responseHeadersFromRaw(response.rawHeaders),
      body: bodiless ? null : response,
    });
  }

  onPendingMessage(data: Buffer, isBinary: boolean): void {
    this.pending.push({ data, isBinary });
  }

  onError(error: Error): void {
    if (this.state === State.Connecting) {
      this.fail(handshakeError(error));
      return;
    }
    if (this.state === State.Offered && this.ended === null) {
      this.ended = { code: 1006, reason: Buffer.alloc(0), error };
      return;
    }
    // The rejection's body was streaming: its failure reaches the client through the body.
    const rejection = this.rejection;
    if (rejection !== null && !rejection.complete && !rejection.destroyed) rejection.destroy(toRelayError(error));
  }

  onClose(code: number, reason: Buffer): void {
    if (this.state === State.Connecting) {
      this.fail(new RelayError('ERR_UPSTREAM_RESET', 'the upstream closed the connection during the handshake'));
      return;
    }
    if (this.state === State.Offered && this.ended === null) this.ended = { code, reason, error: null };
    if (this.abortReason !== null) this.binding.handshakes.delete(this);
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

  /** The hand-off's `reject`: the client will not be accepted, so the upstream is closed. Idempotent. */
  reject(reason: Error): void {
    if (this.state !== State.Offered || this.abortReason !== null) return;
    const relayError = toRelayError(reason);
    this.abortReason = relayError;
    this.request.client.setAbortHandler(null);
    const upstream = this.upstream!;
    if (upstream.readyState === WebSocket.CLOSED) this.binding.handshakes.delete(this);
    else closeOpen(upstream, 1001, relayError.code === 'ERR_SHUTTING_DOWN' ? closeReasons.shutdown : closeReasons.refused);
  }

  /**
   * The hand-off's `accept`: completes the client's handshake with `ws`, the upstream's
   * subprotocol and the headers the stages left, then starts the session.
   */
  accept(incoming: IncomingMessage, socket: Duplex, head: Buffer, headers: HeaderRecord): void {
    try {
      this.acceptClient(incoming as Tagged<IncomingMessage>, socket, head, headers);
    } catch (error) {
      // Called from the relay's promise chain: nothing may escape as an unhandled rejection.
      this.binding.config.logger.error({ path: loggedPath(this.request.path, this.binding.config), error: (error as Error).message }, 'websocket accept failed');
      this.giveUp(1011, closeReasons[1011]);
      socket.destroy();
    }
  }

  private acceptClient(incoming: Tagged<IncomingMessage>, socket: Duplex, head: Buffer, headers: HeaderRecord): void {
    if (this.state !== State.Offered || this.abortReason !== null) {
      // Given up on (the relay is shutting down) after the 101 was passed to the stages.
      refuseUpgrade(socket, this.abortReason ?? new RelayError('ERR_INTERNAL', 'the handshake is no longer pending'), null);
      return;
    }
    const logger = this.binding.config.logger;
    try {
      this.clientLines = clientHandshakeLines(headers);
    } catch (error) {
      logger.error({ path: loggedPath(this.request.path, this.binding.config), error: (error as Error).message }, 'cannot write the websocket handshake response head');
      this.giveUp(1011, closeReasons[1011]);
      refuseUpgrade(socket, new RelayError('ERR_INTERNAL', 'invalid handshake response head', { cause: error }), null);
      return;
    }
    if (!socket.readable || !socket.writable) {
      this.giveUp(1001, closeReasons.clientLost);
      socket.destroy();
      return;
    }
    incoming[kHandshake] = this;
    this.clientSocket = socket;
    this.binding.server.handleUpgrade(incoming, socket, head, onClientAccepted);
    incoming[kHandshake] = undefined;
    if (this.session === null) {
      // `ws` refused the client's handshake (and answered it): the upstream has no partner.
      logger.warn({ path: loggedPath(this.request.path, this.binding.config) }, 'websocket client handshake refused after the upstream accepted');
      this.giveUp(1011, closeReasons.refused);
    }
  }

  /** Called by `ws` (synchronously, inside `handleUpgrade`) with the accepted client. */
  startSession(client: WebSocket): void {
    this.state = State.Done;
    this.request.client.setAbortHandler(null);
    this.binding.handshakes.delete(this);
    const upstream = this.upstream!;
    upstream[kHandshake] = undefined;
    upstream.removeListener('message', onPendingMessage);
    upstream.removeListener('error', onHandshakeError);
    upstream.removeListener('close', onHandshakeClose);
    const sockets = { upstream: this.upstreamSocket, client: this.clientSocket };
    this.session = new Session(this.binding, upstream, client, sockets, this.request.path, this.pending, this.ended, this.deadline);
    // `ws` has just taken the socket: no data event has come yet. After the session's own receiver listeners.
    ReceiverGate.install(client);
    attachCounts(this.request.client, this.session);
  }

  /** Ends a handshake whose client will not be accepted after all. */
  private giveUp(code: number, reason: string): void {
    this.state = State.Done;
    this.request.client.setAbortHandler(null);
    this.binding.handshakes.delete(this);
    closeOpen(this.upstream!, code, reason);
  }

  /** Fails the handshake before the `101`: the relay answers the client with the error's status. */
  fail(error: RelayError): void {
    if (this.state !== State.Connecting) return;
    this.state = State.Done;
    this.timers.clear();
    this.binding.handshakes.delete(this);
    this.request.client.setAbortHandler(null);
    if (this.upstream?.readyState === WebSocket.CONNECTING) this.upstream.terminate();
    this.refuse(error);
  }
}

/** Maps a failure before the upstream's `101` to a `RelayError`: `ws`'s own handshake checks are protocol errors (502). */
function handshakeError(error: Error): RelayError {
  const relayError = toRelayError(error);
  if (relayError.code !== 'ERR_INTERNAL') return relayError;
  return new RelayError('ERR_UPSTREAM_PROTOCOL', `invalid upstream handshake: ${error.message}`, { cause: error });
}

function ignoreError(): void {}

/** A refusal's `end`/`close`: its upstream connection is never reused. */
function destroyConnection(this: Refusal): void {
  this[kConnection]?.destroy();
}

function onRequestSocket(this: Tagged<ClientRequest>, socket: Tagged<Socket>): void {
  const handshake = this[kHandshake]!;
  handshake.upstreamSocket = socket;
  if (!socket.connecting) {
    handshake.onConnected();
    return;
  }
  socket[kHandshake] = handshake;
  // The target this handshake goes to (a stage's choice may differ from the relay's: https relay, unix: target).
  const target = handshake.request.target ?? handshake.binding.config.target;
  socket.once(target.protocol === 'https:' ? 'secureConnect' : 'connect', onSocketConnected);
}

function onSocketConnected(this: Tagged<Socket>): void {
  const handshake = this[kHandshake]!;
  // The socket outlives the handshake (it carries the session): it must not keep it alive.
  this[kHandshake] = undefined;
  handshake.onConnected();
}

function onRequestTimeout(this: Tagged<ClientRequest>): void {
  this[kHandshake]!.onTimeout();
}

function onUpstreamUpgrade(this: Tagged<WebSocket>, response: IncomingMessage): void {
  this[kHandshake]!.onUpgrade(response);
}

function onUpstreamOpen(this: Tagged<WebSocket>): void {
  this[kHandshake]!.onOpen();
}

function onUpstreamRejection(this: Tagged<WebSocket>, _req: ClientRequest, response: IncomingMessage): void {
  this[kHandshake]!.onRejection(response);
}

function onPendingMessage(this: Tagged<WebSocket>, data: Buffer, isBinary: boolean): void {
  this[kHandshake]!.onPendingMessage(data, isBinary);
}

function onHandshakeError(this: Tagged<WebSocket>, error: Error): void {
  this[kHandshake]?.onError(error);
}

function onHandshakeClose(this: Tagged<WebSocket>, code: number, reason: Buffer): void {
  this[kHandshake]?.onClose(code, reason);
}

function onClientAccepted(client: WebSocket, req: Tagged<IncomingMessage>): void {
  req[kHandshake]!.startSession(client);
}

/**
 * `ws`'s `createConnection` for a `unix:` target: the connection goes to the socket whatever the
 * address says. Rather than a `ws+unix:` address, which `ws` splits at the socket path's first
 * `:`, so `/run/a:b.sock` would connect to `/run/a`.
 */
function unixConnection(socketPath: string): typeof createConnection {
  return (() => createConnection(socketPath)) as typeof createConnection;
}

/** The origin-only address of a target a stage chose (the request line keeps its own path). */
function addressOf(target: Target): URL {
  return new URL(`${target.protocol === 'https:' ? 'wss' : 'ws'}://${target.host}/`);
}
