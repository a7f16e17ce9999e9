import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '@relay/core';
import { decodeUnreserved, hasStrayPercent } from '@relay/core/transport';
import { answer, type ListenerRequest, type ListenerResponse } from './answer.js';
import { checkApiOptions, checkOptional } from './api-options.js';
import type { GatewayView } from './cluster-view.js';
import { GatewayStoppingError } from './gateway-stopping.js';
import { Generation, newSharedStats, type LimitStoreOf, type LiveRoute, type SharedStats } from './generation.js';
import type { LoadedConfig } from './load-config.js';
import { checkLogger } from './log.js';
import { hostMatches, requestHost, underPrefix } from './matcher.js';
import { RedisConnection } from './redis-connection.js';
import { statusSnapshot, type StatusSnapshot } from './status.js';
import { statusPage } from './status-page.js';

/** Answers `/metrics`: set by `metrics.ts` when prom-client is installed. */
export type MetricsEndpoint = (res: ListenerResponse) => void;

/** Options of `createGateway`. */
export interface GatewayOptions {
  /** Where the gateway and its relays log. */
  logger: Logger;
  /** Serves `/metrics`; without it the path answers 404. */
  metrics?: MetricsEndpoint;
  /** In a worker of `--workers N`: where the status JSON of the whole gateway comes from. */
  view?: GatewayView;
  /**
   * Where the routes' rate limits count, by limit id (the route's label and the limit's options),
   * when the config's `redis` block does not hold them (no block, or `store: memory`): default a
   * memory store per limit in this process. A worker of `--workers N` gets `workerLimitStores()`
   * (the primary counts for all).
   */
  limitStore?: LimitStoreOf;
}

const gatewayOptionNames: readonly string[] = ['logger', 'metrics', 'view', 'limitStore'];

/**
 * Checks what `createGateway` (and `serve`, which passes them on) is given besides the config,
 * before a route is built or anything listens: a TypeError naming the option. A bad `limitStore`
 * would otherwise surface as a `ConfigError` on a route's `rateLimit` line, the caller's mistake
 * blamed on the file.
 *
 * @example
 * checkGatewayOptions(options, 'serve');
 */
export function checkGatewayOptions(options: { [K in keyof GatewayOptions]?: unknown }, where: string): void {
  checkLogger(options.logger, `${where}: logger`);
  checkOptional(options.metrics, 'function', `${where}: metrics`, 'a function (res) => void that answers /metrics');
  const view = options.view as Partial<GatewayView> | undefined;
  if (view !== undefined && (view === null || typeof view !== 'object' || typeof view.status !== 'function' || typeof view.metrics !== 'function')) {
    throw new TypeError(`${where}: view must be a GatewayView { status(), metrics() } such as workerView(), got ${view === null ? 'null' : typeof view}`);
  }
  checkOptional(options.limitStore, 'function', `${where}: limitStore`, 'a function (limit id) => LimitStore, such as workerLimitStores()');
}

/**
 * The gateway in one process: the routes of the current config as relays, `/healthz`, `/metrics`
 * and the status page, and reloads that swap in new relays while the old ones finish their work.
 *
 * @example
 * const gateway = createGateway(await loadConfig('gateway.yaml'), { logger });
 * await gateway.startup();
 * http.createServer(gateway.handle).on('upgrade', gateway.upgrade).listen(8080);
 */
export function createGateway(loaded: LoadedConfig, options: GatewayOptions): Gateway {
  return new Gateway(loaded, options);
}

/**
 * See `createGateway`.
 *
 * @example
 * const gateway = new Gateway(loaded, { logger });
 */
export class Gateway {
  readonly handle: (req: ListenerRequest, res: ListenerResponse) => void;
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly startedAt = Date.now();
  readonly shared: SharedStats = newSharedStats();
  readonly retiring = new Set<Generation>();
  reloads = { succeeded: 0, failed: 0 };
  current: Generation;
  private stopping = false;
  /** Reloads not yet settled: `shutdown()` waits for them (they abandon their generation once they see `stopping`). */
  private readonly reloading = new Set<Promise<void>>();
  private readonly logger: Logger;
  private readonly metrics: MetricsEndpoint | undefined;
  private readonly view: GatewayView | undefined;
  private readonly limitStore: LimitStoreOf | undefined;

  constructor(loaded: LoadedConfig, options: GatewayOptions) {
    checkApiOptions(options, gatewayOptionNames, 'createGateway');
    checkGatewayOptions(options, 'createGateway');
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.view = options.view;
    this.limitStore = options.limitStore;
    this.current = this.generation(1, loaded, undefined);
    this.handle = this.handlerFor(undefined);
    this.upgrade = (req, socket, head) => this.serveUpgrade(req, socket, head);
  }

  /**
   * The request listener of one listener (by its `name`): endpoints restricted to named listeners
   * answer only there; elsewhere their paths go to the routes like any other.
   */
  handlerFor(listener: string | undefined): (req: ListenerRequest, res: ListenerResponse) => void {
    return (req, res) => this.serve(req, res, listener);
  }

  get config(): LoadedConfig['config'] {
    return this.current.loaded.config;
  }

  /** Starts the relays and connects to the config's Redis (waiting for it at most `redisReadyWait`). */
  async startup(): Promise<void> {
    await Promise.all([this.current.startup(), this.current.redis?.ready()]);
  }

  /**
   * A generation of `loaded`, with the Redis client of its `redis` block: the current one's when the
   * `url` is the same (prefix and timeout are the stores', not the client's), else a new one,
   * closed again if the config is refused.
   */
  private generation(number: number, loaded: LoadedConfig, current: RedisConnection | undefined): Generation {
    const settings = loaded.config.redis;
    const redis = settings === undefined ? undefined : current?.url === settings.url ? current : new RedisConnection(settings, loaded.shown, this.logger);
    try {
      return new Generation({ number, loaded, shared: this.shared, logger: this.logger, limitStore: this.limitStore, redis });
    } catch (error) {
      if (redis !== current) void redis?.close();
      throw error;
    }
  }

  /** Closes a generation's Redis client unless a generation still serving (or draining) uses it. */
  private async release(redis: RedisConnection | undefined): Promise<void> {
    if (redis === undefined || redis === this.current.redis) return;
    for (const generation of this.retiring) if (generation.redis === redis) return;
    await redis.close();
  }

  /**
   * Builds relays from a new config (it throws a `ConfigError` before anything changes), starts
   * them, then sends new requests to them; the old relays serve their in-flight requests and
   * WebSocket sessions to the end and are shut down after, or at `timeouts.reloadDrain`. Rejects
   * with a `GatewayStoppingError` when `shutdown()` began before it or while its relays started.
   */
  reload(loaded: LoadedConfig): Promise<void> {
    if (this.stopping) return Promise.reject(new GatewayStoppingError('reload refused: the gateway is stopping'));
    const reloading = this.apply(loaded);
    this.reloading.add(reloading);
    const settled = () => void this.reloading.delete(reloading);
    reloading.then(settled, settled);
    return reloading;
  }

  private async apply(loaded: LoadedConfig): Promise<void> {
    const next = this.generation(this.current.number + 1, loaded, this.current.redis);
    try {
      await Promise.all([next.startup(), next.redis?.ready()]);
    } catch (error) {
      if (next.redis !== this.current.redis) void next.redis?.close();
      throw error;
    }
    // Starting can take up to redisReadyWait: a shutdown() meanwhile has stopped the relays it knew
    // of, so these would run on (and a new Redis client reconnect forever) and hold the process.
    if (this.stopping) return this.abandon(next);
    const previous = this.current;
    this.current = next;
    // What no route asks for any more is dropped; the retiring relays hold their own references.
    for (const key of this.shared.kept.keys()) if (!next.keptKeys.has(key)) this.shared.kept.delete(key);
    this.reloads.succeeded++;
    this.logger.info({ generation: next.number, routes: next.routes.length }, 'config reloaded');
    void this.retire(previous);
  }

  /** Closes a started generation that will never serve, then rejects its reload. */
  private async abandon(next: Generation): Promise<never> {
    await next.shutdown(0);
    if (next.redis !== this.current.redis) await next.redis?.close();
    throw new GatewayStoppingError('reload abandoned: the gateway is stopping');
  }

  private async retire(generation: Generation): Promise<void> {
    this.retiring.add(generation);
    const deadline = Date.now() + (this.config.timeouts.reloadDrain ?? 600_000);
    while ((generation.inFlight > 0 || generation.counters.websocketSessions > 0) && Date.now() < deadline && this.retiring.has(generation)) {
      await new Promise((resolve) => setTimeout(resolve, 200).unref());
    }
    if (!this.retiring.delete(generation)) return;
    await generation.shutdown(0);
    // Its Redis client, if the new config names another Redis: quit once nothing of this generation is in flight.
    await this.release(generation.redis);
    this.logger.debug({ generation: generation.number }, 'old relays stopped');
  }

  /**
   * Refuses new work (healthz answers 503) and shuts every relay down, draining up to `timeout`; a
   * reload still starting is waited for as long (it closes what it started once it sees `stopping`).
   */
  async shutdown(timeout: number): Promise<void> {
    this.stopping = true;
    const generations = [this.current, ...this.retiring];
    this.retiring.clear();
    // No reload can make another generation current from here on: these are all that serve.
    await Promise.all([settledWithin([...this.reloading], timeout), ...generations.map((generation) => generation.shutdown(timeout))]);
    // Then the Redis clients: an open one would keep the process alive after SIGTERM.
    const clients = new Set(generations.map((generation) => generation.redis));
    await Promise.all([...clients].map((redis) => redis?.close()));
  }

  /** What the status page shows, as data. */
  status(): StatusSnapshot {
    return statusSnapshot(this);
  }

  private serve(req: ListenerRequest, res: ListenerResponse, listener: string | undefined): void {
    const target = originForm(req.url ?? '/');
    // A `%` that starts no escape has no normal form to route by (`/%6%31dmin`): 400, as nginx and the relay answer.
    if (hasStrayPercent(target)) return void badPath(res);
    const url = decodeUnreserved(target);
    if (this.serveEndpoint(url, res, listener)) return;
    const found = this.route(req, url);
    if (found === null) return void notFound(res, 404);
    if (typeof found === 'string') return void notFound(res, 405, found);
    // A route that forwards the target as the client sent it takes the relay's own entry, as the
    // same relay written in code does: no route object per request. (The gateway's relays have no
    // mountPath, so `handle` and `dispatch` with `{ path: url, mountPath: '' }` forward alike.)
    // A target with decoded escapes is forwarded as it was matched, so the upstream sees what the route saw.
    if (url === req.url && !strips(found)) found.relay.handle(req, res);
    else found.relay.dispatch(req, res, forwarded(found, url));
  }

  private serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const target = originForm(req.url ?? '/');
    if (hasStrayPercent(target)) return void socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    const url = decodeUnreserved(target);
    const found = this.route(req, url);
    if (found === null) return void socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    // RFC 9110 §15.5.6: a 405 MUST list the methods the target takes, as the HTTP answer does.
    if (typeof found === 'string') {
      return void socket.end(`HTTP/1.1 405 Method Not Allowed\r\nallow: ${allowHeader(found)}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    }
    found.relay.dispatchUpgrade(req, socket, head, forwarded(found, url));
  }

  /** The route for a request; the allowed methods when only the method differs; `null` for none. */
  private route(req: ListenerRequest, url: string): LiveRoute | string | null {
    const { ordered, usesHosts } = this.current;
    const host = usesHosts ? requestHost(req) : '';
    const method = req.method ?? 'GET';
    let allowed: string | null = null;
    for (let index = 0; index < ordered.length; index++) {
      const route = ordered[index]!;
      const { matcher } = route;
      if (!underPrefix(url, matcher.path) || !hostMatches(matcher, host)) continue;
      if (matcher.methods === null || matcher.methods.has(method)) return route;
      allowed = allowed === null ? matcher.allow : `${allowed}, ${matcher.allow}`;
    }
    return allowed;
  }

  /** The status JSON: of the whole gateway in a worker (this worker's alone, marked partial, if the primary does not answer). */
  private sendStatus(res: ListenerResponse): void {
    const json = (snapshot: StatusSnapshot) => send(res, 200, 'application/json', `${JSON.stringify(snapshot)}\n`);
    if (this.view === undefined) return json(this.status());
    this.view.status().then(json, (error: Error) => {
      this.logger.warn({ error: error.message }, 'status: the other workers could not be asked; answering with this one');
      json({ ...this.status(), partial: true });
    });
  }

  private serveEndpoint(url: string, res: ListenerResponse, listener: string | undefined): boolean {
    const { health, metrics, status, statusJson } = this.current.endpoints;
    if (health !== null && isPath(url, health.path) && answersOn(health, listener)) {
      send(res, this.stopping ? 503 : 200, 'text/plain; charset=utf-8', this.stopping ? 'stopping\n' : 'ok\n');
      return true;
    }
    if (metrics !== null && this.metrics !== undefined && isPath(url, metrics.path) && answersOn(metrics, listener)) {
      this.metrics(res);
      return true;
    }
    if (status === null || !answersOn(status, listener)) return false;
    if (isPath(url, status.path)) send(res, 200, 'text/html; charset=utf-8', statusPage(statusJson));
    else if (isPath(url, statusJson)) this.sendStatus(res);
    else return false;
    return true;
  }
}

/** Resolves once every promise has settled, or after `timeout` ms, whichever comes first. */
async function settledWithin(promises: ReadonlyArray<Promise<unknown>>, timeout: number): Promise<void> {
  if (promises.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)));
  await Promise.race([Promise.allSettled(promises), gaveUp]);
  clearTimeout(timer);
}

/** Whether a request target is exactly `path`, with or without a query: no string is built per request. */
function isPath(url: string, path: string): boolean {
  if (!url.startsWith(path)) return false;
  return url.length === path.length || url.charCodeAt(path.length) === 63 /* ? */;
}

/** Whether the route's relay forwards the target without the route's prefix. */
function strips(route: LiveRoute): boolean {
  return route.matcher.stripPrefix && route.matcher.path !== '/';
}

/** What the route's relay forwards: the target as it came, or without the stripped prefix. */
function forwarded(route: LiveRoute, url: string): { path: string; mountPath: string } {
  if (!strips(route)) return { path: url, mountPath: '' };
  return { path: url.slice(route.matcher.path.length), mountPath: route.matcher.path };
}

function answersOn(endpoint: { listeners?: string[] }, listener: string | undefined): boolean {
  return endpoint.listeners === undefined || (listener !== undefined && endpoint.listeners.includes(listener));
}

/**
 * The path and query of an absolute-form target (`GET http://host/api/x`), which routes like
 * `/api/x` (core forwards only its path too); origin-form targets pass through untouched.
 */
function originForm(url: string): string {
  if (url.charCodeAt(0) === 47 /* / */) return url;
  const match = /^https?:\/\/[^/?#]*/i.exec(url);
  if (match === null) return url;
  const rest = url.slice(match[0].length);
  return rest === '' || rest[0] === '?' ? `/${rest}` : rest;
}

function send(res: ListenerResponse, status: number, type: string, body: string): void {
  answer(res, status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }, body);
}

function badPath(res: ListenerResponse): void {
  const body = '400 Bad Request: malformed percent-encoding in the path\n';
  answer(res, 400, { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length, connection: 'close' }, body);
}

function notFound(res: ListenerResponse, status: 404 | 405, allow?: string): void {
  const body = status === 404 ? '404 Not Found: no route for this request\n' : '405 Method Not Allowed\n';
  const headers: OutgoingHttpHeaders = { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length };
  if (allow !== undefined) headers.allow = allowHeader(allow);
  answer(res, status, headers, body);
}

/** The `Allow` value of the routes' methods, each once (two routes may list the same one). */
function allowHeader(allow: string): string {
  return [...new Set(allow.split(', '))].join(', ');
}
