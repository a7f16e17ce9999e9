import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { BlockList, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Readable, type Duplex } from 'node:stream';
import { ClientInfo } from '../request/client.js';
import { RelayError, toRelayError } from '../errors.js';
import { attemptEvents, publishLifecycle, publishRequestEnd, publishRequestStart } from '../events.js';
import {
  assertHeaderListComplete,
  copyRequestHeaders,
  resolveForwardedHeaders,
  setForwardingHeaders,
  type ForwardedHeaders,
  type ForwardingPolicy,
} from '../request/forwarding.js';
import { httpTransport } from '../transport/http.js';
import { InFlightList, type InFlight } from './in-flight.js';
import { assertKnownKeys } from '../known-keys.js';
import { loggedPath, logUpstreamFailure, silentLogger } from '../logger.js';
import { assertNonNegative, resolveTarget, resolveTimeouts, resolveTls } from '../options.js';
import { assertSafeUpstreamPath, isUnderMount, mapRequestPath, normalizePathOption, pathOnly, splitAbsoluteForm } from '../request/path.js';
import { assertStage, compose } from '../pipeline.js';
import { sendError } from './respond.js';
import type {
  BoundTransport,
  Handler,
  HeaderRecord,
  Logger,
  ProxyRequest,
  ProxyResponse,
  Stage,
  Target,
  Timeouts,
  TlsOptions,
  Transport,
  TransportConfig,
  UpgradeTransport,
} from '../types.js';
import { resolveTrustProxy, trustsPeer, unmapIPv4, type TrustProxy } from '../request/trust-proxy.js';
import { UpgradeExchange, refuseUpgrade } from './upgrade.js';

/** Options of `createRelay`. */
export interface RelayOptions {
  /** The upstream service, e.g. `http://auth:8000` or `https://api.internal/base`. Required. */
  targetBaseUrl: string | URL;
  /** Prepended to every upstream path, after the target's own path. Default `/`. */
  upstreamPrefix?: string;
  /** For plain node:http: the path the relay answers under, stripped before forwarding; other paths get 404. Default none. */
  mountPath?: string;
  /** Send the client's `Host` upstream instead of the upstream's own. Default `false`. */
  preserveHost?: boolean;
  /** Milliseconds: one number for every phase, or `{ connect, read, write, pool }`. Defaults 5 000 / 30 000 / 30 000 / 10 000. */
  timeout?: number | Partial<Timeouts>;
  /** Stages around the transport; `stages[0]` is the outermost. Default none. */
  stages?: readonly Stage[];
  /** The innermost handler. Default `httpTransport()`. */
  transport?: Transport;
  /** The WebSocket transport (`websocket()` from `@relay/ws`); without it `relay.upgrade` answers 501. */
  websocket?: UpgradeTransport;
  /** A pino-style logger. Default: nothing is logged. */
  logger?: Logger;
  /** TLS settings for an `https:` target. Certificates are verified by default. */
  tls?: TlsOptions;
  /** How long `shutdown()` waits for in-flight requests before aborting them, in ms. Default 10 000. */
  shutdownTimeout?: number;
  /**
   * Whose forwarding headers to believe. `false` (default: an edge gateway) removes client-sent
   * `X-Forwarded-*`, `Forwarded`, `X-Real-IP` and `True-Client-IP` and writes the relay's own;
   * `true`, or a list of addresses / CIDR ranges / `loopback` matching the immediate peer, keeps a
   * trusted proxy's values and appends to its `X-Forwarded-For`.
   */
  trustProxy?: TrustProxy;
  /** Which forwarding headers the relay writes: `true` (default) all, `false` none, or `{ for, proto, host, port, prefix }`. */
  forwarded?: boolean | ForwardedHeaders;
  /** Log request targets with their query string. Default `false`: queries often carry tokens, so log lines show the path only. */
  logQuery?: boolean;
}

/** A relay: a node:http request listener plus its lifecycle. */
export interface Relay {
  /** A node:http request listener: `http.createServer(relay.handle)`. */
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Serves one request whose mount path a framework has already stripped: `path` is the
   * request target after the mount (`/login?x=1`), `mountPath` what was stripped. When
   * `onError` is given, errors before the response go to it instead of being answered.
   */
  dispatch(req: IncomingMessage, res: ServerResponse, route: DispatchRoute): void;
  /**
   * A node:http `upgrade` listener: `server.on('upgrade', relay.upgrade)`. The handshake goes
   * through the same stages as HTTP, then to the `websocket` transport.
   */
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** `upgrade` for a framework that routed the request itself: see `DispatchRoute` (its `onError` is not used). */
  dispatchUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: DispatchRoute): void;
  /** Acquires the transport's resources; idempotent. Requests before it get 503. */
  startup(): Promise<void>;
  /** Refuses new requests (503), waits for in-flight ones up to the deadline, aborts the rest, releases resources; idempotent. */
  shutdown(options?: { timeout?: number }): Promise<void>;
  /** The parsed upstream target. */
  readonly target: Target;
  /** The resolved timeouts. */
  readonly timeouts: Readonly<Timeouts>;
  /** The logger in use. */
  readonly logger: Logger;
  /** `stopped`, `starting`, `running` or `stopping`. */
  readonly state: RelayState;
  /** Requests in flight now. */
  readonly inFlight: number;
  /** Whether log lines carry query strings (`logQuery`). */
  readonly logQuery: boolean;
}

/** Where a framework-mounted request goes: see `Relay.dispatch`. */
export interface DispatchRoute {
  /**
   * The request target after the mount path, e.g. `/login?next=%2F`. For the bare mount path
   * itself (`/auth`, no trailing slash) it is `''` or just the query (`?next=%2F`): that maps to
   * the upstream prefix without a trailing slash, as `relay.handle` maps a bare `mountPath`.
   */
  path: string;
  /** The mount path the framework stripped, `''` for none. Sent as `X-Forwarded-Prefix`. */
  mountPath: string;
  /** Receives errors that happen before the response starts, instead of an error response. */
  onError?: (error: RelayError) => void;
  /** The request target as the client sent it (`client.originalUrl`); default `req.url`. */
  originalUrl?: string;
  /**
   * The whole request body, already read and decoded (a body parser consumed `req`): sent instead
   * of reading `req`, with a fresh `Content-Length` and without `Content-Encoding` or
   * `Transfer-Encoding`, and replayable by a retry stage. Not used for upgrades.
   */
  body?: Buffer;
}

/** A relay's lifecycle state. */
export type RelayState = 'stopped' | 'starting' | 'running' | 'stopping';

/**
 * Builds a relay in front of one upstream service. The pipeline (stages around the
 * transport) is built here, once; options are checked here too.
 *
 * @example
 * const relay = createRelay({ targetBaseUrl: 'http://auth:8000', mountPath: '/auth' });
 * await relay.startup();
 * http.createServer(relay.handle).listen(8080);
 * // GET /auth/login → GET http://auth:8000/login
 */
export function createRelay(options: RelayOptions): Relay {
  if (options === null || typeof options !== 'object') throw new TypeError('createRelay(options) needs an options object');
  assertKnownKeys(options, relayOptionNames, 'createRelay');
  return new RelayCore(options);
}

const relayOptionNames: readonly string[] = [
  'targetBaseUrl',
  'upstreamPrefix',
  'mountPath',
  'preserveHost',
  'timeout',
  'stages',
  'transport',
  'websocket',
  'logger',
  'tls',
  'shutdownTimeout',
  'trustProxy',
  'forwarded',
  'logQuery',
];

const kExchange = Symbol('relay.exchange');
type TaggedResponse = ServerResponse & { [kExchange]?: Exchange };
type TaggedBody = Readable & { [kExchange]?: Exchange };
const kSocketExchanges = Symbol('relay.socketExchanges');
type TaggedSocket = Socket & { [kSocketExchanges]?: Exchange[] };

/** The state of one client request while it is served. */
class Exchange implements InFlight {
  host: string | undefined = undefined;
  chunked = false;
  previousInFlight: InFlight | null = null;
  nextInFlight: InFlight | null = null;
  listed = false;
  request: ProxyRequest | null = null;
  client: ClientInfo | null = null;

  constructor(
    readonly relay: RelayCore,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly onError: ((error: RelayError) => void) | null,
  ) {}

  abortForShutdown(reason: RelayError): void {
    this.client?.abort(reason);
    if (this.res.headersSent) this.res.destroy();
  }
}

/** @internal The relay behind `createRelay`; `upgrade.ts` serves WebSocket handshakes with it. */
export class RelayCore implements Relay {
  readonly handle: (req: IncomingMessage, res: ServerResponse) => void;
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly target: Target;
  readonly timeouts: Readonly<Timeouts>;
  readonly logger: Logger;
  readonly mountPath: string;
  readonly preserveHost: boolean;
  /** Which peers are trusted proxies (`trustProxy`), and the forwarding policy for each kind of peer. */
  readonly trustProxy: boolean | BlockList;
  readonly forwarding: { readonly edge: ForwardingPolicy; readonly trusted: ForwardingPolicy };
  readonly shutdownTimeout: number;
  /** Log lines carry query strings (`logQuery`); by default they do not. */
  readonly logQuery: boolean;
  readonly transport: BoundTransport;
  readonly pipeline: Handler;
  /** The bound WebSocket transport and the stages around it, or `null` without `websocket`. */
  readonly websocket: BoundTransport | null;
  readonly upgradePipeline: Handler | null;
  state: RelayState = 'stopped';
  private readonly active = new InFlightList();
  private startupPromise: Promise<void> | null = null;
  private shutdownPromise: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  constructor(options: RelayOptions) {
    this.target = resolveTarget(options.targetBaseUrl, options.upstreamPrefix);
    this.timeouts = Object.freeze(resolveTimeouts(options.timeout));
    this.mountPath = normalizePathOption(options.mountPath, 'mountPath');
    if (options.preserveHost !== undefined && typeof options.preserveHost !== 'boolean') {
      throw new TypeError('preserveHost must be a boolean');
    }
    this.preserveHost = options.preserveHost ?? false;
    this.trustProxy = resolveTrustProxy(options.trustProxy);
    const forwarded = resolveForwardedHeaders(options.forwarded);
    this.forwarding = {
      edge: Object.freeze({ preserveHost: this.preserveHost, trusted: false, headers: forwarded }),
      trusted: Object.freeze({ preserveHost: this.preserveHost, trusted: true, headers: forwarded }),
    };
    this.shutdownTimeout = options.shutdownTimeout ?? 10_000;
    assertNonNegative(this.shutdownTimeout, 'shutdownTimeout');
    this.logger = resolveLogger(options.logger);
    const stages = options.stages ?? [];
    if (!Array.isArray(stages)) throw new TypeError('stages must be an array of stages');
    stages.forEach((stage, index) => assertStage(stage, `stages[${index}]`));
    const transport = options.transport ?? httpTransport();
    if (transport === null || typeof transport !== 'object' || typeof transport.bind !== 'function') {
      throw new TypeError('transport must be a transport: an object with a name and a bind(config) function');
    }
    if (options.logQuery !== undefined && typeof options.logQuery !== 'boolean') throw new TypeError('logQuery must be a boolean');
    this.logQuery = options.logQuery ?? false;
    const transportConfig = { target: this.target, timeouts: this.timeouts, tls: resolveTls(options.tls), logger: this.logger, logQuery: this.logQuery };
    this.transport = transport.bind(transportConfig);
    const context = { logger: this.logger, target: this.target, timeouts: this.timeouts, logQuery: this.logQuery };
    this.pipeline = compose(stages, checkedTransport(stages, attemptEvents(loggedTransport(this.transport, transportConfig), this.target), this.logger), context);
    const websocket = options.websocket;
    if (websocket !== undefined && (websocket === null || typeof websocket !== 'object' || typeof websocket.bind !== 'function')) {
      throw new TypeError('websocket must be a WebSocket transport such as websocket() from @relay/ws');
    }
    this.websocket = websocket === undefined ? null : websocket.bind(transportConfig);
    this.upgradePipeline =
      this.websocket === null
        ? null
        : compose(stages, checkedTransport(stages, attemptEvents(loggedTransport(this.websocket, transportConfig), this.target), this.logger), context);
    this.handle = (req, res) => this.serve(req, res, req.url ?? '', this.mountPath, null, null);
    this.upgrade = (req, socket, head) => this.serveUpgrade(req, socket, head, req.url ?? '', this.mountPath, null);
  }

  get inFlight(): number {
    return this.active.size;
  }

  dispatch(req: IncomingMessage, res: ServerResponse, route: DispatchRoute): void {
    this.serve(req, res, route.path, normalizeRuntimeMount(route.mountPath), route.onError ?? null, route);
  }

  dispatchUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: DispatchRoute): void {
    this.serveUpgrade(req, socket, head, route.path, normalizeRuntimeMount(route.mountPath), route);
  }

  startup(): Promise<void> {
    if (this.state === 'running') return Promise.resolve();
    if (this.startupPromise !== null) return this.startupPromise;
    const pending = this.shutdownPromise ?? Promise.resolve();
    this.startupPromise = pending
      .then(async () => {
        this.state = 'starting';
        await this.transport.startup();
        await this.websocket?.startup();
        this.state = 'running';
        this.logger.debug({ target: this.target.origin }, 'relay started');
        publishLifecycle(this.target, true);
      })
      .catch((error: unknown) => {
        this.state = 'stopped';
        throw error;
      })
      .finally(() => {
        this.startupPromise = null;
      });
    return this.startupPromise;
  }

  shutdown(options: { timeout?: number } = {}): Promise<void> {
    if (this.shutdownPromise !== null) return this.shutdownPromise;
    if (this.state === 'stopped' && this.startupPromise === null) return Promise.resolve();
    const timeout = options.timeout ?? this.shutdownTimeout;
    assertNonNegative(timeout, 'shutdown timeout');
    this.shutdownPromise = (this.startupPromise ?? Promise.resolve())
      .catch(() => {})
      .then(async () => {
        this.state = 'stopping';
        // Relayed WebSockets never finish on their own: close them (1001) first, then drain HTTP.
        await this.websocket?.shutdown();
        await this.drain(timeout);
        await this.transport.shutdown();
        this.state = 'stopped';
        this.logger.debug({ target: this.target.origin }, 'relay stopped');
        publishLifecycle(this.target, false);
      })
      .finally(() => {
        this.shutdownPromise = null;
      });
    return this.shutdownPromise;
  }

  private drain(timeout: number): Promise<void> {
    if (this.active.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let grace: NodeJS.Timeout | null = null;
      const timer = setTimeout(() => {
        const reason = new RelayError('ERR_SHUTTING_DOWN', `shutdown deadline of ${timeout} ms passed`);
        this.logger.warn({ inFlight: this.active.size, timeout }, 'relay shutdown deadline passed: aborting in-flight requests');
        for (const exchange of this.active.entries()) exchange.abortForShutdown(reason);
        // Aborted exchanges report back on their socket's close; never let one missing report hold shutdown.
        grace = setTimeout(() => {
          this.logger.error({ inFlight: this.active.size }, 'relay shutdown: in-flight requests did not close after abort');
          this.active.clear();
          this.drained?.();
        }, 1_000);
      }, timeout);
      this.drained = () => {
        clearTimeout(timer);
        if (grace !== null) clearTimeout(grace);
        this.drained = null;
        resolve();
      };
    });
  }

  track(exchange: InFlight): void {
    this.active.add(exchange);
  }

  finished(exchange: InFlight): void {
    this.active.delete(exchange);
    if (this.active.size === 0 && this.drained !== null) this.drained();
  }

  /** Serves one request; `route` is set when a framework stripped the mount (`dispatch`). */
  serve(
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    mountPath: string,
    onError: ((error: RelayError) => void) | null,
    route: DispatchRoute | null,
  ): void {
    const exchange = new Exchange(this, req, res, onError);
    const refusal = this.refusal(req, target, mountPath, route);
    if (refusal !== null) {
      fail(exchange, refusal);
      return;
    }
    let request: ProxyRequest;
    try {
      request = this.buildRequest(req, exchange, target, mountPath, route);
    } catch (error) {
      fail(exchange, this.badRequest(req, target, error));
      return;
    }
    exchange.request = request;
    this.active.add(exchange);
    (res as TaggedResponse)[kExchange] = exchange;
    res.on('close', onClientClose);
    publishRequestStart(this.target, request, false);
    watchSocket(exchange);
    void runPipeline(this.pipeline, exchange, request);
  }

  serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: string, mountPath: string, route: DispatchRoute | null): void {
    const pipeline = this.upgradePipeline;
    if (pipeline === null) {
      refuseUpgrade(socket, new RelayError('ERR_UPGRADE_UNSUPPORTED', 'this relay has no websocket transport'), this.logger);
      return;
    }
    const refusal = this.refusal(req, target, mountPath, route);
    if (refusal !== null) {
      refuseUpgrade(socket, refusal, null);
      return;
    }
    const exchange = new UpgradeExchange(this, req, socket, head);
    let request: ProxyRequest;
    try {
      request = this.buildRequest(req, exchange, target, mountPath, route);
    } catch (error) {
      refuseUpgrade(socket, this.badRequest(req, target, error), null);
      return;
    }
    exchange.start(pipeline, request);
  }

  /** The error for a request the relay cannot take in its current state, or `null`. */
  private refusal(req: IncomingMessage, target: string, mountPath: string, route: DispatchRoute | null): RelayError | null {
    if (this.state === 'running') return null;
    // Outside its mount path the relay is not the one to answer: 404, started or not.
    if (route === null && mountPath !== '' && !isUnderMount(target, mountPath)) {
      return new RelayError('ERR_NOT_MOUNTED', `path is outside the mount path ${mountPath}`);
    }
    const error =
      this.state === 'stopping'
        ? new RelayError('ERR_SHUTTING_DOWN', 'relay is shutting down')
        : new RelayError('ERR_NOT_STARTED', 'relay is not started: call relay.startup() before serving requests');
    this.logger[this.state === 'stopping' ? 'info' : 'error']({ method: req.method, code: error.code }, error.message);
    return error;
  }

  private badRequest(req: IncomingMessage, target: string, error: unknown): RelayError {
    const relayError = toRelayError(error);
    const level = relayError.code === 'ERR_NOT_MOUNTED' ? 'debug' : relayError.code === 'ERR_BODY_CONSUMED' ? 'error' : 'warn';
    this.logger[level](
      { method: req.method, path: loggedPath(target, this).slice(0, 256), code: relayError.code },
      relayError.message,
    );
    return relayError;
  }

  /**
   * Builds the first attempt's request from the client's: path mapping, headers, client facts.
   * With a `route` (a framework stripped the mount) `rawTarget` is already after the mount.
   */
  buildRequest(req: IncomingMessage, exchange: InFlight, rawTarget: string, mountPath: string, route: DispatchRoute | null): ProxyRequest {
    assertHeaderListComplete(req);
    const socket = req.socket as TLSSocket | null;
    const address = unmapIPv4(socket?.remoteAddress ?? '');
    const forwarding = trustsPeer(this.trustProxy, address) ? this.forwarding.trusted : this.forwarding.edge;
    const headers = copyRequestHeaders(req.rawHeaders, exchange, forwarding);
    const strip = route === null ? mountPath : '';
    let path: string;
    let host = exchange.host ?? '';
    const first = rawTarget.charCodeAt(0);
    // After a stripped mount, `''` or a bare query is the mount path itself.
    if (first === 47 /* / */ || (route !== null && (rawTarget === '' || first === 63) /* ? */)) {
      path = mapRequestPath(rawTarget, strip, this.target.basePath);
    } else {
      // Absolute-form: only its path is forwarded; its authority replaces Host (RFC 9112 §3.2.2).
      const absolute = splitAbsoluteForm(rawTarget);
      path = mapRequestPath(absolute.pathAndQuery, strip, this.target.basePath);
      host = absolute.authority;
    }
    const client = new ClientInfo(
      {
        address,
        scheme: socket?.encrypted === true ? 'https' : 'http',
        host,
        mountPath,
        originalUrl: route?.originalUrl ?? req.url ?? rawTarget,
        port: socket?.localPort ?? 0,
      },
      req,
    );
    exchange.client = client;
    setForwardingHeaders(headers, client, this.target, forwarding);
    if (route?.body !== undefined && exchange instanceof Exchange) return bufferedRequest(req, path, headers, client, route.body);
    const contentLength = headers['content-length'];
    const hasBody = exchange.chunked || (contentLength !== undefined && contentLength !== '0');
    if (hasBody && req.readableEnded) {
      // A body parser mounted before the relay read it: waiting for it would hang until the read timeout.
      throw new RelayError('ERR_BODY_CONSUMED', 'the request body was already read (a body parser runs before the relay): mount the relay first');
    }
    return {
      method: req.method ?? 'GET',
      path,
      headers,
      body: hasBody ? req : null,
      replayBody: null,
      attempt: 1,
      client,
    };
  }
}

/** A request whose body a framework already read: the bytes are sent instead of `req`, and can be sent again. */
function bufferedRequest(req: IncomingMessage, path: string, headers: HeaderRecord, client: ClientInfo, body: Buffer): ProxyRequest {
  // The bytes are decoded and complete: the client's framing and coding no longer describe them.
  delete headers['content-encoding'];
  headers['content-length'] = String(body.length);
  const empty = body.length === 0;
  return {
    method: req.method ?? 'GET',
    path,
    headers,
    body: empty ? null : bufferStream(body),
    replayBody: empty ? null : () => bufferStream(body),
    attempt: 1,
    client,
  };
}

function bufferStream(bytes: Buffer): Readable {
  const stream = new Readable({ read: noop });
  stream.push(bytes);
  stream.push(null);
  return stream;
}

function noop(): void {}

function resolveLogger(logger: unknown): Logger {
  if (logger === undefined) return silentLogger;
  const candidate = logger as Partial<Logger> | null;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof candidate?.[level] !== 'function') throw new TypeError(`logger must have a ${level}(fields, message) method`);
  }
  return candidate as Logger;
}

function normalizeRuntimeMount(mountPath: string): string {
  if (mountPath === '' || mountPath === '/') return '';
  return mountPath.endsWith('/') ? mountPath.slice(0, -1) : mountPath;
}

/** The transport, wrapped so each upstream failure is one structured log line. */
function loggedTransport(transport: BoundTransport, config: Pick<TransportConfig, 'logger' | 'target' | 'logQuery'>): Handler {
  // A transport that logs its own failures runs bare: no extra async frame per request.
  if (transport.logsFailures === true) return transport.handle;
  const send = transport.handle;
  return async function transport(request: ProxyRequest): Promise<ProxyResponse> {
    try {
      return await send(request);
    } catch (error) {
      const relayError = toRelayError(error);
      logUpstreamFailure(config, request, relayError);
      throw relayError;
    }
  };
}

/**
 * The transport behind a check of the path the stages leave on each attempt: a stage may set
 * `request.path`, and what it sets goes through the client's path rules (`ERR_BAD_PATH`, 400)
 * before anything is sent. Without stages the client's path was checked already: no wrapper.
 */
function checkedTransport(stages: readonly Stage[], send: Handler, logger: Logger): Handler {
  if (stages.length === 0) return send;
  return function transport(request: ProxyRequest): Promise<ProxyResponse> {
    try {
      assertSafeUpstreamPath(request.path);
    } catch (error) {
      const relayError = toRelayError(error);
      logger.warn({ method: request.method, path: pathOnly(request.path).slice(0, 256), code: relayError.code }, `a stage set an unsafe upstream path: ${relayError.message}`);
      return Promise.reject(relayError);
    }
    return send(request);
  };
}

function fail(exchange: Exchange, error: RelayError): void {
  if (exchange.onError !== null && !exchange.res.headersSent) {
    handOff(exchange, exchange.onError, error);
    return;
  }
  sendError(exchange.res, error, exchange.req.method === 'HEAD');
}

/**
 * Gives an error to `dispatch`'s `onError`. A handler that throws (or rejects) must neither crash
 * the process nor leave the client unanswered: 500 and a log line, as `toConnect` does.
 */
function handOff(exchange: Exchange, onError: (error: RelayError) => void, error: RelayError): void {
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

function onErrorFailed(exchange: Exchange, error: RelayError, thrown: unknown): void {
  exchange.relay.logger.error(
    { method: exchange.req.method, code: error.code, error: thrown instanceof Error ? thrown.message : String(thrown) },
    'the onError handler given to relay.dispatch threw: answered 500',
  );
  sendError(exchange.res, new RelayError('ERR_INTERNAL', 'onError threw', { cause: thrown }), exchange.req.method === 'HEAD');
}

/**
 * Runs the pipeline for one exchange and writes what it answers. An async function rather than
 * `.then(onResponse, onError)`: no closures per request, and a stage that throws instead of
 * rejecting lands in the same catch, never in the request listener.
 */
async function runPipeline(pipeline: Handler, exchange: Exchange, request: ProxyRequest): Promise<void> {
  let response: ProxyResponse;
  try {
    response = await pipeline(request);
  } catch (error) {
    onPipelineError(exchange, error);
    return;
  }
  try {
    writeResponse(exchange, response);
  } catch (error) {
    // Never an unhandled rejection from a request: log it and cut the connection.
    exchange.relay.logger.error({ method: exchange.req.method, error: (error as Error).message }, 'writing the response failed');
    response.body?.destroy();
    exchange.res.destroy();
  }
}

function onPipelineError(exchange: Exchange, error: unknown): void {
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

function writeResponse(exchange: Exchange, response: ProxyResponse): void {
  const { res, relay } = exchange;
  const body = response.body as TaggedBody | null;
  if (res.destroyed || exchange.client!.aborted) {
    body?.destroy();
    if (!res.destroyed && exchange.client!.abortReason?.code === 'ERR_SHUTTING_DOWN') fail(exchange, exchange.client!.abortReason);
    return;
  }
  if (body !== null && body.destroyed && !body.readableEnded) {
    // A body that already failed would never emit again: the client would wait forever.
    fail(exchange, new RelayError('ERR_INTERNAL', 'the response body stream was destroyed before the response was written'));
    return;
  }
  // An answer before the upload ended (the upstream refused early): the rest of the body is never
  // read, so the connection cannot be reused. `Connection: close`, then closed (nginx, reply-from).
  if (relay.state === 'stopping' || (exchange.request!.body !== null && !exchange.req.complete)) res.shouldKeepAlive = false;
  try {
    res.writeHead(response.status, response.statusMessage || undefined, response.headers as OutgoingHttpHeaders);
  } catch (error) {
    body?.destroy();
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
  if (body.readableLength === 0 && !body.readableEnded) res.flushHeaders();
  body.pipe(res);
}

function onClientClose(this: TaggedResponse): void {
  const exchange = this[kExchange]!;
  unwatchSocket(exchange);
  endExchange(exchange);
}

function endExchange(exchange: Exchange): void {
  const { res } = exchange;
  if (!res.writableFinished) exchange.client!.abort();
  // The response's close and its socket's close may both end an exchange: publish its end once.
  const listed = exchange.listed;
  exchange.relay.finished(exchange);
  if (listed) publishRequestEnd(exchange.relay.target, exchange.request, res.statusCode, res.writableFinished);
}

/**
 * Node emits no `close` on a queued pipelined response whose client has gone: each exchange is
 * listed on its socket too, and the socket's `close` ends those still open. One array per
 * connection (usually holding one exchange), no listener per request.
 */
function watchSocket(exchange: Exchange): void {
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

function unwatchSocket(exchange: Exchange): void {
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
  exchange.res.destroy();
}

function onResponseBodyClose(this: TaggedBody): void {
  if (!this.readableEnded) this[kExchange]!.res.destroy();
}
