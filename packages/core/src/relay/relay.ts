import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { RelayError } from '../errors.js';
import { assertKnownKeys } from '../known-keys.js';
import { assertLogger, guardedLogger, silentLogger } from '../logger.js';
import { assertTimeout, resolveTarget, resolveTimeouts, resolveTls } from '../options.js';
import { assertStage, compose } from '../pipeline.js';
import type { Entry, RequestRules } from '../request/build.js';
import { resolveForwardedHeaders } from '../request/forwarding.js';
import { normalizePathOption } from '../request/path.js';
import { resolveTrustProxy } from '../request/trust-proxy.js';
import { httpTransport } from '../transport/http.js';
import type { Handler, Logger, Stage, StageContext, Target, Timeouts, TransportConfig } from '../types.js';
import type { DispatchRoute, FetchClient, Relay, RelayOptions, RelayState } from './api.js';
import { refuse, refuseInvalid, serve, type FrontHost } from './front.js';
import type { ExchangeHost } from './host.js';
import { FetchExchange, incomingOf } from './fetch-exchange.js';
import { HttpExchange } from './http-exchange.js';
import type { InFlight } from './in-flight.js';
import { innerHandler } from './inner.js';
import { Lifecycle } from './lifecycle.js';
import { isWebSocketHandshake, MisroutedHandshakes } from './misrouted-handshake.js';
import { isWebSocketUpgrade, serveAsPlainRequest } from './plain-upgrade.js';
import { refuseUpgrade, UpgradeExchange } from './upgrade.js';

/**
 * Builds a relay in front of one upstream service. The pipeline (stages around the
 * transport) is built here, once; options are checked here too. The relay starts on its first
 * request; `await relay.startup()` starts it now and surfaces errors early.
 *
 * @example
 * const relay = createRelay({ targetBaseUrl: 'http://auth:8000', mountPath: '/auth' });
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

const fetchClientNames: readonly string[] = ['address'];
const routeNames: readonly string[] = ['path', 'mountPath', 'onError', 'originalUrl', 'body', 'headers'];

/**
 * A `DispatchRoute` from a framework adapter: an object of known keys, so a misspelled `onEror`
 * or `originalURL` throws rather than changing how errors are answered or what prefix is sent.
 */
function checkRoute(route: DispatchRoute, method: string): void {
  if (route === null || typeof route !== 'object') throw new TypeError(`${method}(req, …, route): route must be an object: { path, mountPath, onError, originalUrl, body, headers }`);
  assertKnownKeys(route, routeNames, `${method} route`);
}

/**
 * `relay.fetch`'s `client`: thrown, not a rejection: a misspelled `{ adress }`, or an `address`
 * that is no IP address (it would go upstream as the client's `X-Forwarded-For`), is a programming
 * error, as a bad option of createRelay is.
 */
function checkFetchClient(client: FetchClient): void {
  if (client === null || typeof client !== 'object') throw new TypeError('relay.fetch(request, client): client must be an object: { address }');
  assertKnownKeys(client, fetchClientNames, 'relay.fetch client');
  const address: unknown = client.address;
  if (address !== undefined && (typeof address !== 'string' || isIP(address) === 0)) {
    const shown = typeof address === 'string' ? JSON.stringify(address.slice(0, 64)) : typeof address;
    throw new TypeError(`relay.fetch client.address must be an IP address such as "203.0.113.7", got ${shown}`);
  }
}

/** The relay behind `createRelay`: options read once, the two pipelines built once, one front. */
class RelayCore implements Relay, FrontHost, ExchangeHost {
  readonly handle: (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly target: Target;
  readonly timeouts: Readonly<Timeouts>;
  readonly logger: Logger;
  readonly logQuery: boolean;
  readonly rules: RequestRules;
  readonly lifecycle: Lifecycle;
  readonly pipeline: Handler;
  /** The stages around the WebSocket transport, or `null` without `websocket`. */
  readonly upgradePipeline: Handler | null;
  /** How `handle` and `upgrade` requests enter: the relay strips its own `mountPath`. */
  private readonly ownEntry: Entry;
  /** The WebSocket handshakes that reach `handle` or `dispatch` (a server without an `upgrade` listener). */
  private readonly misroutedHandshakes: MisroutedHandshakes;

  constructor(options: RelayOptions) {
    this.target = resolveTarget(options.targetBaseUrl, options.upstreamPrefix);
    this.timeouts = Object.freeze(resolveTimeouts(options.timeout));
    const mountPath = normalizePathOption(options.mountPath, 'mountPath');
    this.ownEntry = Object.freeze({ strip: mountPath, mountPath });
    this.rules = requestRules(options, this.target);
    this.logger = resolveLogger(options.logger);
    if (options.logQuery !== undefined && typeof options.logQuery !== 'boolean') throw new TypeError('logQuery must be a boolean');
    this.logQuery = options.logQuery ?? false;
    const stages = checkStages(options.stages);
    // Frozen: the same settings reach the transport and, read-only, the stages (a balancer's health checks).
    const tls = Object.freeze(resolveTls(options.tls));
    const config: TransportConfig = { target: this.target, timeouts: this.timeouts, tls, logger: this.logger, logQuery: this.logQuery };
    const transport = checkTransport(options.transport).bind(config);
    const websocket = checkWebSocket(options.websocket)?.bind(config) ?? null;
    const context: StageContext = { logger: this.logger, target: this.target, timeouts: this.timeouts, logQuery: this.logQuery, tls };
    this.pipeline = compose(stages, innerHandler(transport, config, stages), context);
    this.upgradePipeline = websocket === null ? null : compose(stages, innerHandler(websocket, config, stages), context);
    const shutdownTimeout = options.shutdownTimeout ?? 10_000;
    assertTimeout(shutdownTimeout, 'shutdownTimeout');
    this.lifecycle = new Lifecycle({ transport, websocket, logger: this.logger, target: this.target, shutdownTimeout });
    this.misroutedHandshakes = new MisroutedHandshakes({ logger: this.logger, logQuery: this.logQuery, hasWebSocket: websocket !== null });
    this.handle = (req, res) => {
      const exchange = new HttpExchange(this, req as IncomingMessage, res as ServerResponse, null);
      if (isWebSocketHandshake(req as IncomingMessage)) this.refuseHandshake(exchange, req.url ?? '', 'relay.handle');
      else serve(this, exchange, this.pipeline, req.url ?? '', this.ownEntry);
    };
    this.upgrade = (req, socket, head) => this.serveUpgrade(req, socket, head, req.url ?? '', this.ownEntry);
  }

  get state(): RelayState {
    return this.lifecycle.state;
  }

  get inFlight(): number {
    return this.lifecycle.inFlight;
  }

  dispatch(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, route: DispatchRoute): void {
    checkRoute(route, 'dispatch');
    // The HTTP/2 compatibility objects are read through the node:http shape they share.
    const exchange = new HttpExchange(this, req as IncomingMessage, res as ServerResponse, route.onError ?? null);
    if (isWebSocketHandshake(req as IncomingMessage)) this.refuseHandshake(exchange, route.path, 'relay.dispatch');
    else serve(this, exchange, this.pipeline, route.path, routeEntry(route, route.body));
  }

  /**
   * A WebSocket handshake node gave to the request handler (its server has no `upgrade`
   * listener): 501, never relayed as the plain GET it also is. `Connection: close`, as
   * `relay.upgrade` answers: the client meant the connection for a session, not for more requests.
   */
  private refuseHandshake(exchange: HttpExchange, rawTarget: string, entry: 'relay.handle' | 'relay.dispatch'): void {
    exchange.res.shouldKeepAlive = false;
    refuse(this, exchange, rawTarget, this.misroutedHandshakes.refusal(exchange.req, rawTarget, entry));
  }

  dispatchUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: DispatchRoute): void {
    checkRoute(route, 'dispatchUpgrade');
    this.serveUpgrade(req, socket, head, route.path, routeEntry(route, undefined));
  }

  fetch(request: Request, client: FetchClient = {}): Promise<Response> {
    checkFetchClient(client);
    return new Promise<Response>((resolve) => {
      const { incoming, target, refusal } = incomingOf(request, client);
      const exchange = new FetchExchange(this, incoming, request.signal ?? null, resolve);
      if (refusal !== null) refuseInvalid(this, exchange, target, refusal);
      else serve(this, exchange, this.pipeline, target, this.ownEntry);
    });
  }

  private serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, rawTarget: string, entry: Entry): void {
    // Not a WebSocket (h2c): the plain request it also is, through the server's request handling.
    if (!isWebSocketUpgrade(req) && serveAsPlainRequest(req, socket, head)) return;
    const pipeline = this.upgradePipeline;
    if (pipeline === null) {
      refuseUpgrade(socket, new RelayError('ERR_UPGRADE_UNSUPPORTED', 'this relay has no websocket transport'), this.logger);
      return;
    }
    serve(this, new UpgradeExchange(this, req, socket, head), pipeline, rawTarget, entry);
  }

  startup(): Promise<void> {
    return this.lifecycle.startup();
  }

  shutdown(options?: { timeout?: number }): Promise<void> {
    return this.lifecycle.shutdown(options);
  }

  track(exchange: InFlight): void {
    this.lifecycle.track(exchange);
  }

  finished(exchange: InFlight): void {
    this.lifecycle.finished(exchange);
  }
}

/** How a framework-routed request enters: the framework stripped the mount already. */
function routeEntry(route: DispatchRoute, body: Buffer | undefined): Entry {
  const entry: { -readonly [K in keyof Entry]: Entry[K] } = { strip: '', mountPath: normalizeRuntimeMount(route.mountPath) };
  if (route.originalUrl !== undefined) entry.originalUrl = route.originalUrl;
  if (route.headers !== undefined) entry.headers = route.headers;
  if (body !== undefined) entry.body = body;
  return entry;
}

function requestRules(options: RelayOptions, target: Target): RequestRules {
  if (options.preserveHost !== undefined && typeof options.preserveHost !== 'boolean') throw new TypeError('preserveHost must be a boolean');
  const preserveHost = options.preserveHost ?? false;
  const headers = resolveForwardedHeaders(options.forwarded);
  return {
    target,
    trustProxy: resolveTrustProxy(options.trustProxy),
    forwarding: {
      edge: Object.freeze({ preserveHost, trusted: false, headers }),
      trusted: Object.freeze({ preserveHost, trusted: true, headers }),
    },
  };
}

function checkStages(stages: unknown): readonly Stage[] {
  if (stages === undefined) return [];
  if (!Array.isArray(stages)) throw new TypeError('stages must be an array of stages');
  stages.forEach((stage, index) => assertStage(stage, `stages[${index}]`));
  return stages as readonly Stage[];
}

function checkTransport(transport: RelayOptions['transport']): NonNullable<RelayOptions['transport']> {
  if (transport === undefined) return httpTransport();
  if (transport === null || typeof transport !== 'object' || typeof transport.bind !== 'function') {
    throw new TypeError('transport must be a transport: an object with a name and a bind(config) function');
  }
  if ((transport.kind as string) === 'upgrade') throw new TypeError('transport is a WebSocket transport: pass it as `websocket`');
  return transport;
}

function checkWebSocket(websocket: RelayOptions['websocket']): RelayOptions['websocket'] {
  if (websocket === undefined) return undefined;
  if (websocket === null || typeof websocket !== 'object' || typeof websocket.bind !== 'function') {
    throw new TypeError('websocket must be a WebSocket transport such as websocket() from @relay/ws');
  }
  if ((websocket.kind as string) === 'http') throw new TypeError('websocket is an HTTP transport: pass it as `transport`');
  return websocket;
}

function resolveLogger(logger: unknown): Logger {
  if (logger === undefined) return silentLogger;
  assertLogger(logger, 'logger');
  return guardedLogger(logger);
}

function normalizeRuntimeMount(mountPath: string): string {
  if (mountPath === '' || mountPath === '/') return '';
  return mountPath.endsWith('/') ? mountPath.slice(0, -1) : mountPath;
}

