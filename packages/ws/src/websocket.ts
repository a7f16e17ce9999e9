import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type ServerOptions } from 'ws';
import { RelayError, assertKnownKeys, type Handler, type ProxyRequest, type ProxyResponse, type UpgradeTransport } from '@relay/core';
import { assertNonNegative, assertTimerDelay, maxTimerDelay, type BoundTransport, type TransportConfig } from '@relay/core/transport';
import { checkClientHandshake, parseSubprotocols, type ClientHandshakeChecks } from './handshake-headers.js';
import { UpstreamHandshake, kHandshake } from './handshake.js';
import { resolvePolicy, sideMaxPayload, type PolicyOptions } from './policy.js';
import { RawHandshake } from './raw-handshake.js';
import type { CloseTimeoutOption, RelayedSession, SessionHost, UpstreamOptions, WebSocketSettings } from './host.js';

/**
 * Options of `websocket()`. Without a message-level policy (`onClientMessage`, `onUpstreamMessage`,
 * `limits`, `deadline`, `maxPayload`) a session is transparent: bytes are relayed as they come and
 * extensions are negotiated end to end. With one, the relay terminates each side's frames.
 */
export interface WebSocketOptions extends PolicyOptions {
  /**
   * Largest message accepted from either side, in bytes; a bigger one ends the session with 1009. 0 removes the limit.
   * Setting it makes sessions terminating. Default (terminating sessions) 100 MiB, `ws`'s own default.
   */
  maxPayload?: number;
  /** Terminating sessions: most fragments one message may have (0: no limit). Default 100 000. */
  maxFragments?: number;
  /** Bytes queued towards one side before the relay stops reading from the other, until they drain. Default 1 MiB. */
  highWaterMark?: number;
  /**
   * Close a session with 1001 after this many ms in which nothing moved: no message, ping or pong either way, and no
   * write progress towards either side, so a slow reader still taking a big message is not idle (the liveness rule: a
   * peer that vanished without a FIN, or stopped reading, is found this way). 0 disables. Default 300 000 (5 min,
   * Envoy's stream idle timeout). Longer than node's timer limit (about 24.8 days) works: the relay checks again when
   * each timer runs out.
   */
  idleTimeout?: number;
  /**
   * How long a side may take to answer a close frame, from when the frame was written to it, before its connection is
   * destroyed, in ms. A frame queued behind data the side is still reading waits for it; a side that takes none of that
   * data for `idleTimeout` (this, when `idleTimeout` is 0) is cut. Default 5 000. At most 2 147 483 647 (node's timer
   * limit, about 24.8 days).
   */
  closeTimeout?: number;
  /**
   * Terminating sessions: negotiate permessage-deflate with the client and with the upstream, each link on its own.
   * Default `false`. Transparent sessions negotiate extensions end to end, whatever this says.
   */
  perMessageDeflate?: boolean;
}

const optionNames = new Set([
  'maxPayload',
  'maxFragments',
  'highWaterMark',
  'idleTimeout',
  'closeTimeout',
  'perMessageDeflate',
  'onClientMessage',
  'onUpstreamMessage',
  'limits',
  'deadline',
]);

/**
 * The WebSocket transport of a relay, built on `ws`. A handshake goes through the relay's
 * stages like any request, then this transport opens the upstream WebSocket (`ws:` or `wss:`
 * from the target's scheme) before the client is accepted: the client gets the subprotocol the
 * upstream chose, or the upstream's refusal as its HTTP status. Then the session is relayed
 * with backpressure, each side's close code reaching the other: byte for byte by default
 * (transparent: extensions negotiated end to end), or message by message through the hooks,
 * limits and deadline of a message policy (terminating).
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
  assertKnownKeys(options, [...optionNames], 'websocket');
  const policy = resolvePolicy(options);
  const settings: WebSocketSettings = {
    maxPayload: options.maxPayload ?? 100 * 1024 * 1024,
    maxFragments: options.maxFragments ?? 100_000,
    policy,
    terminate: policy !== null || options.maxPayload !== undefined,
    highWaterMark: options.highWaterMark ?? 1024 * 1024,
    idleTimeout: options.idleTimeout ?? 5 * 60_000,
    closeTimeout: options.closeTimeout ?? 5_000,
    perMessageDeflate: options.perMessageDeflate ?? false,
  };
  assertNonNegative(settings.maxPayload, 'maxPayload');
  assertNonNegative(settings.highWaterMark, 'highWaterMark');
  assertNonNegative(settings.idleTimeout, 'idleTimeout');
  assertNonNegative(settings.closeTimeout, 'closeTimeout');
  assertNonNegative(settings.maxFragments, 'maxFragments');
  if (!Number.isInteger(settings.maxFragments)) throw new RangeError(`maxFragments must be a whole number, got ${settings.maxFragments}`);
  if (!Number.isInteger(settings.maxPayload)) throw new RangeError(`maxPayload must be a whole number of bytes, got ${settings.maxPayload}`);
  if (settings.closeTimeout < 1) throw new RangeError(`closeTimeout must be at least 1 ms, got ${settings.closeTimeout}`);
  // `ws` arms its own timer with closeTimeout, which node would fire after 1 ms beyond its limit: every close would
  // destroy its connection at once. Nobody waits weeks for a close frame, so this is a limit, not a chain of timers.
  assertTimerDelay(settings.closeTimeout, 'closeTimeout');
  if (typeof settings.perMessageDeflate !== 'boolean') throw new TypeError('perMessageDeflate must be a boolean');
  return {
    kind: 'upgrade',
    name: 'websocket',
    bind(config: TransportConfig): BoundTransport {
      return new WebSocketBinding(config, settings);
    },
  };
}

/** @internal The transport bound to one relay: its `ws` server, handshakes and sessions. */
export class WebSocketBinding implements BoundTransport, SessionHost {
  readonly handle: Handler;
  /** `ws:` or `wss:` and the target's host: the path is set on the request line itself. */
  readonly address: URL;
  readonly clientOptions: UpstreamOptions;
  /** Completes the clients' handshakes; it never listens itself. */
  readonly server: WebSocketServer;
  readonly handshakes = new Set<UpstreamHandshake | RawHandshake>();
  readonly sessions = new Set<RelayedSession>();
  /** Options of the transparent upstream request: the relay's TLS options as they are (client certificates too). */
  readonly tlsOptions: Record<string, unknown>;
  running = false;
  /** What the client's handshake is checked for before the upstream is contacted, beyond what every session needs. */
  private readonly clientChecks: ClientHandshakeChecks;
  private drained: (() => void) | null = null;

  constructor(
    readonly config: TransportConfig,
    readonly settings: WebSocketSettings,
  ) {
    const secure = config.target.protocol === 'https:';
    this.address = new URL(`${secure ? 'wss' : 'ws'}://${config.target.host}/`);
    const clientOptions: UpstreamOptions = {
      autoPong: false,
      closeTimeout: settings.closeTimeout,
      followRedirects: false,
      // A message over a size limit is cut by `ws` at its frame header, or as its inflater's output passes it.
      maxPayload: sideMaxPayload(settings.maxPayload, settings.policy, 'upstream'),
      maxFragments: settings.maxFragments,
      perMessageDeflate: settings.perMessageDeflate,
    };
    // The same TLS options as the HTTP transports get (`ca`, `servername`, client `cert`/`key`/`pfx` …).
    this.tlsOptions = secure ? { ...config.tls, rejectUnauthorized: config.tls.rejectUnauthorized ?? true } : {};
    if (secure) Object.assign(clientOptions, this.tlsOptions);
    this.clientOptions = clientOptions;
    const serverOptions: ServerOptions & CloseTimeoutOption = {
      noServer: true,
      clientTracking: false,
      // Pings and pongs are relayed, so the peers' own keep-alive checks see each other.
      autoPong: false,
      closeTimeout: settings.closeTimeout,
      maxPayload: sideMaxPayload(settings.maxPayload, settings.policy, 'client'),
      perMessageDeflate: settings.perMessageDeflate,
      maxFragments: settings.maxFragments,
      handleProtocols: chooseClientProtocol,
    };
    this.server = new WebSocketServer(serverOptions);
    // Terminating sessions negotiate permessage-deflate with the client at the relay's own server.
    this.clientChecks = { deflateOffer: settings.terminate && settings.perMessageDeflate };
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
      }, Math.min(this.settings.closeTimeout + 1_000, maxTimerDelay));
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
      offered = incoming !== null ? checkClientHandshake(incoming, this.clientChecks) : parseSubprotocols(request.headers['sec-websocket-protocol']);
    } catch (error) {
      return Promise.reject(error instanceof RelayError ? error : new RelayError('ERR_BAD_HANDSHAKE', (error as Error).message));
    }
    return new Promise<ProxyResponse>((resolve, reject) => {
      if (this.settings.terminate) new UpstreamHandshake(this, request, offered, resolve, reject).start();
      else new RawHandshake(this, request, offered, resolve, reject).start();
    });
  }

  sessionEnded(session: RelayedSession): void {
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
