import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type ClientOptions, type ServerOptions } from 'ws';
import {
  RelayError,
  assertNonNegative,
  type BoundTransport,
  type Handler,
  type ProxyRequest,
  type ProxyResponse,
  type TransportConfig,
  type UpgradeTransport,
} from '@relay/core';
import { checkClientHandshake, parseSubprotocols } from './handshake-headers.js';
import { UpstreamHandshake, kHandshake } from './handshake.js';
import type { Session } from './session.js';

/** Options of `websocket()`. */
export interface WebSocketOptions {
  /** Largest message accepted from either side, in bytes; a bigger one ends the session with 1009. 0 removes the limit. Default 16 MiB. */
  maxPayload?: number;
  /** Bytes queued towards one side before the relay stops reading from the other, until they drain. Default 1 MiB. */
  highWaterMark?: number;
  /**
   * Close a session with 1001 after this many ms without a message, ping or pong either way (the liveness rule: a peer
   * that vanished without a FIN is found this way). 0 disables. Default 300 000 (5 min, Envoy's stream idle timeout).
   */
  idleTimeout?: number;
  /** How long a side may take to answer a close frame before its connection is destroyed, in ms. Default 5 000. */
  closeTimeout?: number;
  /** Negotiate permessage-deflate with the client and with the upstream (each link on its own). Default `false`. */
  perMessageDeflate?: boolean;
}

/** @internal The options with their defaults. */
export interface WebSocketSettings {
  maxPayload: number;
  highWaterMark: number;
  idleTimeout: number;
  closeTimeout: number;
  perMessageDeflate: boolean;
}

const optionNames = new Set(['maxPayload', 'highWaterMark', 'idleTimeout', 'closeTimeout', 'perMessageDeflate']);

/**
 * The WebSocket transport of a relay, built on `ws`. A handshake goes through the relay's
 * stages like any request, then this transport opens the upstream WebSocket (`ws:` or `wss:`
 * from the target's scheme) before the client is accepted: the client gets the subprotocol the
 * upstream chose, or the upstream's refusal as its HTTP status. Then messages, pings and pongs
 * are relayed both ways with backpressure, and each side's close code reaches the other.
 *
 * @example
 * const relay = createRelay({ targetBaseUrl: 'http://chat:8000', mountPath: '/ws', websocket: websocket({ idleTimeout: 60_000 }) });
 * await relay.startup();
 * const server = http.createServer(relay.handle);
 * server.on('upgrade', relay.upgrade);
 * // ws://gateway/ws/room → ws://chat:8000/room
 */
export function websocket(options: WebSocketOptions = {}): UpgradeTransport {
  if (options === null || typeof options !== 'object') throw new TypeError('websocket(options) needs an options object');
  for (const name of Object.keys(options)) {
    if (!optionNames.has(name)) throw new TypeError(`${name} is not a websocket() option (${[...optionNames].join(', ')})`);
  }
  const settings: WebSocketSettings = {
    maxPayload: options.maxPayload ?? 16 * 1024 * 1024,
    highWaterMark: options.highWaterMark ?? 1024 * 1024,
    idleTimeout: options.idleTimeout ?? 5 * 60_000,
    closeTimeout: options.closeTimeout ?? 5_000,
    perMessageDeflate: options.perMessageDeflate ?? false,
  };
  assertNonNegative(settings.maxPayload, 'maxPayload');
  assertNonNegative(settings.highWaterMark, 'highWaterMark');
  assertNonNegative(settings.idleTimeout, 'idleTimeout');
  assertNonNegative(settings.closeTimeout, 'closeTimeout');
  if (!Number.isInteger(settings.maxPayload)) throw new RangeError(`maxPayload must be a whole number of bytes, got ${settings.maxPayload}`);
  if (settings.closeTimeout < 1) throw new RangeError(`closeTimeout must be at least 1 ms, got ${settings.closeTimeout}`);
  if (typeof settings.perMessageDeflate !== 'boolean') throw new TypeError('perMessageDeflate must be a boolean');
  return {
    name: 'websocket',
    bind(config: TransportConfig): BoundTransport {
      return new WebSocketBinding(config, settings);
    },
  };
}

/** `ws` options this version of `@types/ws` does not list yet. */
interface CloseTimeoutOption {
  closeTimeout: number;
}

/** Client options: `ws` passes TLS ones (`servername` too) on to `tls.connect`. */
type UpstreamOptions = ClientOptions & CloseTimeoutOption & { servername?: string };

/** @internal The transport bound to one relay: its `ws` server, handshakes and sessions. */
export class WebSocketBinding implements BoundTransport {
  readonly handle: Handler;
  /** `ws:` or `wss:` and the target's host: the path is set on the request line itself. */
  readonly address: URL;
  readonly connectEvent: 'connect' | 'secureConnect';
  readonly clientOptions: UpstreamOptions;
  /** Completes the clients' handshakes; it never listens itself. */
  readonly server: WebSocketServer;
  readonly handshakes = new Set<UpstreamHandshake>();
  readonly sessions = new Set<Session>();
  running = false;
  private drained: (() => void) | null = null;

  constructor(
    readonly config: TransportConfig,
    readonly settings: WebSocketSettings,
  ) {
    const secure = config.target.protocol === 'https:';
    this.address = new URL(`${secure ? 'wss' : 'ws'}://${config.target.host}/`);
    this.connectEvent = secure ? 'secureConnect' : 'connect';
    const clientOptions: UpstreamOptions = {
      autoPong: false,
      closeTimeout: settings.closeTimeout,
      followRedirects: false,
      maxPayload: settings.maxPayload,
      perMessageDeflate: settings.perMessageDeflate,
    };
    if (secure) {
      const tls = config.tls;
      clientOptions.rejectUnauthorized = tls.rejectUnauthorized ?? true;
      if (tls.ca !== undefined) clientOptions.ca = tls.ca;
      if (tls.servername !== undefined) clientOptions.servername = tls.servername;
    }
    this.clientOptions = clientOptions;
    const serverOptions: ServerOptions & CloseTimeoutOption = {
      noServer: true,
      clientTracking: false,
      // Pings and pongs are relayed, so the peers' own keep-alive checks see each other.
      autoPong: false,
      closeTimeout: settings.closeTimeout,
      maxPayload: settings.maxPayload,
      perMessageDeflate: settings.perMessageDeflate,
      handleProtocols: chooseClientProtocol,
    };
    this.server = new WebSocketServer(serverOptions);
    this.server.on('headers', addClientHandshakeLines);
    this.handle = (request) => this.open(request);
  }

  startup(): void {
    this.running = true;
  }

  /**
   * Refuses pending handshakes (503), closes every session with 1001 and waits for them to end:
   * up to `closeTimeout`, after which the remaining connections are destroyed.
   */
  async shutdown(): Promise<void> {
    this.running = false;
    const reason = new RelayError('ERR_SHUTTING_DOWN', 'relay is shutting down');
    for (const handshake of [...this.handshakes]) handshake.onClientAbort(reason);
    if (this.sessions.size === 0) return;
    for (const session of this.sessions) session.shutdown();
    await new Promise<void>((resolve) => {
      // `ws` destroys a connection whose peer does not answer within closeTimeout; this is the backstop.
      const timer = setTimeout(() => {
        for (const session of this.sessions) session.terminate();
      }, this.settings.closeTimeout + 1_000);
      this.drained = () => {
        clearTimeout(timer);
        this.drained = null;
        resolve();
      };
    });
  }

  open(request: ProxyRequest): Promise<ProxyResponse> {
    if (!this.running) return Promise.reject(new RelayError('ERR_NOT_STARTED', 'websocket transport is not started: call relay.startup()'));
    const aborted = request.client.abortReason;
    if (aborted !== null) return Promise.reject(aborted);
    let offered: string[];
    try {
      // Without the client's own request (a handle called directly), the record is all there is.
      const incoming = request.client.incoming;
      offered = incoming !== null ? checkClientHandshake(incoming) : parseSubprotocols(request.headers['sec-websocket-protocol']);
    } catch (error) {
      return Promise.reject(error instanceof RelayError ? error : new RelayError('ERR_BAD_HANDSHAKE', (error as Error).message));
    }
    return new Promise<ProxyResponse>((resolve, reject) => {
      new UpstreamHandshake(this, request, offered, resolve, reject).start();
    });
  }

  sessionEnded(session: Session): void {
    this.sessions.delete(session);
    if (this.sessions.size === 0) this.drained?.();
  }
}

type TaggedRequest = IncomingMessage & { [kHandshake]?: UpstreamHandshake };

/** `handleProtocols` of the server: the client gets the subprotocol the upstream chose. */
function chooseClientProtocol(_offered: Set<string>, req: TaggedRequest): string | false {
  const protocol = req[kHandshake]?.upstream?.protocol ?? '';
  return protocol === '' ? false : protocol;
}

/** The server's `headers` listener: the headers the stages left on the upstream's `101`. */
function addClientHandshakeLines(lines: string[], req: TaggedRequest): void {
  const handshake = req[kHandshake];
  if (handshake !== undefined) lines.push(...handshake.clientLines);
}
