import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Gauge, register as defaultRegistry, type Registry } from 'prom-client';
import { relayChannels, type ProxyRequest, type RelayError, type RelayLifecycleMessage, type RequestRefusedMessage, type StageContext, type Target } from '@relay/core';
import { BufferedCounter, BufferedHistogram, type HistogramSeries, type PendingSeries } from './buffered.js';
import { checkOptions, readBoolean, readBuckets, readString, readStringList } from './options.js';
import { createObservation, type Observation, type ObserverFactory } from './observation.js';
import type { Observer, RequestRecord } from './record.js';
import { RouteTable } from './routes.js';

/** Options of `metrics()` (and of `observe({ metrics })`). */
export interface MetricsOptions {
  /** The prom-client registry. Default prom-client's global `register`. */
  registry?: Registry;
  /** Prefix of every metric name. Default `relay_`. */
  prefix?: string;
  /** The `relay` label of this relay's series. Default the target's `host:port`. */
  relay?: string;
  /** Route templates (`/users/:id`, `/static/*`) for the `route` label, matched on the client's path. Default none: `route=""`. */
  routes?: readonly string[];
  /** Buckets of the request duration histogram, in seconds. Default 0.005 … 10. */
  buckets?: readonly number[];
  /** Buckets of the upstream attempt duration histogram, in seconds. Default 0.005 … 10. */
  attemptBuckets?: readonly number[];
  /**
   * Upstream pools whose targets are reported at scrape time, by the `pool` label: `{ api: pool }`
   * with `pool = balance({...})`. Default none.
   */
  pools?: Readonly<Record<string, PoolView>>;
  /**
   * Label series by the upstream's origin (`target`). `false` leaves `target=""`, and labels the
   * `pools` gauges by each target's position in its pool (`"0"`, `"1"` …): a `/metrics` that the
   * public can reach then names no internal address. Default `true`.
   */
  targets?: boolean;
}

/** One target of a pool as `metrics({ pools })` reads it (`@relay/balance`'s `TargetState` fits). */
export interface PoolTargetView {
  readonly url: string;
  readonly healthy: boolean;
  /** A `Date.now()` time the target is ejected until, else 0. */
  readonly ejectedUntil: number;
  readonly inFlight: number;
  readonly pending: number;
  readonly circuitOpen?: boolean;
}

/**
 * What `metrics({ pools })` reads of an upstream pool, at scrape time only: `@relay/balance`'s
 * `BalanceStage` fits, and neither package imports the other.
 */
export interface PoolView {
  targets(): readonly PoolTargetView[];
}

const optionNames = ['registry', 'prefix', 'relay', 'routes', 'buckets', 'attemptBuckets', 'pools', 'targets'] as const;
const defaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'OTHER'];
const statusClasses = ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** Live gauge values of one relay's binding, read at scrape time. */
interface GaugeSource {
  readonly relay: string;
  inFlight: number;
  sessionsOpen: number;
  /** The pools this relay reports, by name. */
  readonly pools: ReadonlyArray<readonly [string, PoolView]>;
  /** Whether pool targets are labelled by URL; else by their position in the pool (`targets: false`). */
  readonly targets: boolean;
  /** Adds the open WebSocket sessions' traffic since the last scrape to the session counters. */
  countOpenSessions(): void;
}

/** What the session counters have of one open WebSocket session so far. */
interface SessionCounted {
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
}

/** A per-target gauge's value, read from a target's state. */
type TargetReading = (target: PoolTargetView, now: number) => number;

const poolGauges: ReadonlyArray<readonly [string, string, TargetReading]> = [
  ['upstream_target_healthy', 'Whether the active health checks pass for the target (1) or not (0); 1 without health checks.', (target) => (target.healthy ? 1 : 0)],
  ['upstream_target_ejected', 'Whether the outlier detection has ejected the target (1) or not (0).', (target, now) => (target.ejectedUntil > now ? 1 : 0)],
  ['upstream_target_in_flight', 'Attempts in progress on the target (until their response body is sent).', (target) => target.inFlight],
  ['upstream_target_pending', 'Attempts waiting for a free slot on the target (circuit breaking).', (target) => target.pending],
  ['upstream_circuit_open', "Whether the target is at its circuit's maxRequests (1): new attempts wait or get a 503.", (target) => (target.circuitOpen === true ? 1 : 0)],
];

/** The metrics of one registry and prefix, shared by every relay that reports to them. */
class MetricSet {
  readonly requests: BufferedCounter;
  readonly duration: BufferedHistogram;
  readonly attempts: BufferedCounter;
  readonly attemptDuration: BufferedHistogram;
  readonly retries: BufferedCounter;
  readonly requestBytes: BufferedCounter;
  readonly responseBytes: BufferedCounter;
  readonly sessions: BufferedCounter;
  readonly sessionBytes: BufferedCounter;
  readonly sessionMessages: BufferedCounter;
  readonly grpcCalls: BufferedCounter;
  readonly sources = new Set<GaugeSource>();
  private poolGauges = false;

  constructor(
    private readonly registry: Registry,
    private readonly prefix: string,
    buckets: number[],
    attemptBuckets: number[],
  ) {
    const registers = [registry];
    const sources = this.sources;
    this.requests = new BufferedCounter(registry, `${prefix}requests_total`, 'Client requests served, by final status class (WebSocket handshakes count once, as 1xx when accepted).', ['relay', 'route', 'method', 'status_class', 'target']);
    this.duration = new BufferedHistogram(registry, `${prefix}request_duration_seconds`, 'From the request stage to the end of the response body (WebSocket: to the 101).', ['relay', 'route', 'method', 'status_class'], buckets);
    this.attempts = new BufferedCounter(registry, `${prefix}upstream_attempts_total`, 'Upstream attempts, retries included, by outcome: the status class of the head, or the Relay error code.', ['relay', 'target', 'outcome']);
    this.attemptDuration = new BufferedHistogram(registry, `${prefix}upstream_attempt_duration_seconds`, 'From sending an upstream attempt to its response head or its failure.', ['relay', 'target', 'outcome'], attemptBuckets);
    this.retries = new BufferedCounter(registry, `${prefix}upstream_retries_total`, 'Upstream attempts after the first of a client request.', ['relay', 'target']);
    this.requestBytes = new BufferedCounter(registry, `${prefix}request_body_bytes_total`, 'Request body bytes read from clients.', ['relay']);
    this.responseBytes = new BufferedCounter(registry, `${prefix}response_body_bytes_total`, 'Response body bytes sent to clients (relay error bodies included).', ['relay']);
    this.sessions = new BufferedCounter(registry, `${prefix}websocket_sessions_total`, 'WebSocket sessions closed.', ['relay']);
    // Open sessions count at each scrape, as Envoy's connection byte counters grow while a connection is open: a
    // session open for hours shows its traffic as it flows, not all of it in the scrape after its close.
    const countOpenSessions = () => {
      for (const source of sources) source.countOpenSessions();
    };
    this.sessionBytes = new BufferedCounter(registry, `${prefix}websocket_bytes_total`, 'Bytes of WebSocket sessions on the client connection, open ones included: in from the client, out to it.', ['relay', 'direction'], countOpenSessions);
    this.sessionMessages = new BufferedCounter(registry, `${prefix}websocket_messages_total`, 'Messages relayed by WebSocket sessions, open ones included: in from the client to the upstream, out from the upstream to the client.', ['relay', 'direction'], countOpenSessions);
    this.grpcCalls = new BufferedCounter(registry, `${prefix}grpc_calls_total`, 'gRPC calls answered, by grpc-status (0 OK … 16; other for a status outside them, none when no status came).', ['relay', 'route', 'grpc_status']);
    new Gauge({
      name: `${prefix}requests_in_flight`,
      help: 'Client requests in flight: seen by the request stage, response body not yet ended.',
      labelNames: ['relay'],
      registers,
      collect() {
        this.reset();
        for (const source of sources) this.inc({ relay: source.relay }, source.inFlight);
      },
    });
    new Gauge({
      name: `${prefix}websocket_sessions_open`,
      help: 'WebSocket sessions open now.',
      labelNames: ['relay'],
      registers,
      collect() {
        this.reset();
        for (const source of sources) this.inc({ relay: source.relay }, source.sessionsOpen);
      },
    });
  }

  /**
   * The per-target gauges, registered the first time a relay reports a pool (a registry without
   * pools shows none of them). Values are read from the pools at scrape time: nothing per request.
   */
  addPoolGauges(): void {
    if (this.poolGauges) return;
    this.poolGauges = true;
    const sources = this.sources;
    for (const [name, help, read] of poolGauges) {
      new Gauge({
        name: `${this.prefix}${name}`,
        help,
        labelNames: ['relay', 'pool', 'target'],
        registers: [this.registry],
        collect() {
          this.reset();
          const now = Date.now();
          for (const source of sources) {
            for (const [pool, view] of source.pools) {
              // `set`, not `inc`: a pool reported twice under one relay label shows once.
              // `targets: false`: a target's position, not its internal address, on a public `/metrics`.
              const targets = view.targets();
              for (let index = 0; index < targets.length; index++) {
                this.set({ relay: source.relay, pool, target: source.targets ? targets[index]!.url : String(index) }, read(targets[index]!, now));
              }
            }
          }
        },
      });
    }
  }
}

const sets = new WeakMap<Registry, Map<string, MetricSet>>();

/** The metric set of a registry and prefix, made on first use (prom-client refuses a name twice). */
function metricSet(registry: Registry, prefix: string, buckets: number[], attemptBuckets: number[]): MetricSet {
  let byPrefix = sets.get(registry);
  if (byPrefix === undefined) sets.set(registry, (byPrefix = new Map()));
  let set = byPrefix.get(prefix);
  // After `registry.clear()` (a test suite's or a hot reload's reset) the set's metrics are gone from it: a new set.
  if (set === undefined || registry.getSingleMetric(`${prefix}requests_total`) !== set.requests) {
    byPrefix.set(prefix, (set = new MetricSet(registry, prefix, buckets, attemptBuckets)));
  }
  else if (!sameNumbers(set.duration.bounds, buckets) || !sameNumbers(set.attemptDuration.bounds, attemptBuckets)) {
    // One histogram per name in a registry: a second set of buckets would be dropped without a word.
    throw new TypeError(`metrics(): the ${prefix} histograms of this registry already have other buckets; give the same buckets, or another prefix or registry`);
  }
  return set;
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

interface MetricsSettings {
  registry: Registry;
  /** The registry's metrics under the prefix, made (or found) when the options are read. */
  set: MetricSet;
  relay: string | null;
  routes: RouteTable;
  pools: ReadonlyArray<readonly [string, PoolView]>;
  /** Whether series carry the upstream origin as `target`. */
  targets: boolean;
}

/** Checks `pools`: an object of named pools, each with a `targets()` method. */
function readPools(value: unknown): Array<readonly [string, PoolView]> {
  if (value === undefined) return [];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError('pools must be an object of named pools: { api: balance({...}) }');
  return Object.entries(value).map(([name, view]) => {
    if (typeof (view as Partial<PoolView> | null)?.targets !== 'function') throw new TypeError(`pools.${name} must be a pool with a targets() method (a balance() stage)`);
    return [name, view as PoolView] as const;
  });
}

/** Reads and checks `metrics()` options. */
export function metricsSettings(options: MetricsOptions): MetricsSettings {
  checkOptions(options, optionNames, 'metrics()');
  const registry = options.registry ?? defaultRegistry;
  if (typeof registry !== 'object' || registry === null || typeof registry.metrics !== 'function') {
    throw new TypeError('registry must be a prom-client Registry');
  }
  const prefix = readString(options.prefix, 'relay_', 'prefix');
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) throw new TypeError(`prefix must be a valid metric name prefix, got ${JSON.stringify(prefix)}`);
  const buckets = readBuckets(options.buckets, defaultBuckets, 'buckets');
  const attemptBuckets = readBuckets(options.attemptBuckets, defaultBuckets, 'attemptBuckets');
  const relay = options.relay === undefined ? null : readString(options.relay, '', 'relay');
  const routes = new RouteTable(readStringList(options.routes, [], 'routes', false));
  const pools = readPools(options.pools);
  const targets = readBoolean(options.targets, true, 'targets');
  return { registry, set: metricSet(registry, prefix, buckets, attemptBuckets), relay, routes, pools, targets };
}

/** Each relay's gauge sources, by its target: weakly held, so a dropped relay takes its entry along. */
const sourcesOf = new WeakMap<Target, Array<{ set: MetricSet; source: GaugeSource }>>();
let watchingLifecycle = false;

/**
 * Keeps `source` in `set`'s gauges while its relay runs: a relay that shuts down (the gateway's
 * old ones, on each reload) leaves them, its pools no longer reported and no longer held by the
 * registry; one started again (`relay.startup()`) comes back.
 */
function trackSource(target: Target, set: MetricSet, source: GaugeSource): void {
  const entries = sourcesOf.get(target);
  if (entries === undefined) sourcesOf.set(target, [{ set, source }]);
  else entries.push({ set, source });
  if (watchingLifecycle) return;
  watchingLifecycle = true;
  subscribe(relayChannels.relayStart, (message) => {
    for (const entry of sourcesOf.get((message as RelayLifecycleMessage).target) ?? []) entry.set.sources.add(entry.source);
  });
  subscribe(relayChannels.relayStop, (message) => {
    for (const entry of sourcesOf.get((message as RelayLifecycleMessage).target) ?? []) entry.set.sources.delete(entry.source);
  });
}

/** The metrics as an observer factory, for `observe()`. */
export function metricsFactory(settings: MetricsSettings): ObserverFactory {
  return {
    bind(context: StageContext): Observer {
      const set = settings.set;
      if (settings.pools.length > 0) set.addPoolGauges();
      const observer = new MetricsObserver(set, settings.routes, settings.relay ?? context.target.host, settings.targets ? context.target.origin : null, settings.pools, settings.targets);
      trackSource(context.target, set, observer.source);
      return observer;
    },
  };
}

/** The counter and the histogram of one label set. */
interface Series {
  count: PendingSeries;
  duration: HistogramSeries;
}

/** The series of one route, method and status class: the duration histogram, and a counter per target. */
interface RequestSeries {
  readonly labels: Record<string, string>;
  readonly counts: Map<string, PendingSeries>;
  readonly duration: HistogramSeries;
}

/** The method label's index in `methods`; `OTHER` (the last) for any other method. */
function methodIndex(method: string): number {
  const index = methods.indexOf(method);
  return index < 0 ? methods.length - 1 : index;
}

/** The status class label's index in `statusClasses`: 1xx … 5xx, anything else 5xx. */
function classIndex(status: number): number {
  const index = Math.floor(status / 100);
  return index >= 1 && index <= 5 ? index : 5;
}

/** The `target` label: the origin of the last attempt (a balancer's choice), else the relay's own. */
/** The `target` label: the attempt's origin (a balancer's choice, else the relay's), `''` when targets are not labelled (`fallback` null). */
function targetOf(record: RequestRecord, fallback: string | null): string {
  if (fallback === null) return '';
  return record.attemptTarget === null ? fallback : record.attemptTarget.origin;
}

/** The inner map of `outer` for `target`, made on first use. */
function seriesOf<K, V>(outer: Map<string, Map<K, V>>, target: string): Map<K, V> {
  let inner = outer.get(target);
  if (inner === undefined) outer.set(target, (inner = new Map()));
  return inner;
}

/** One relay's view of a metric set: its labelled series, made on first use and kept. */
class MetricsObserver implements Observer {
  readonly source: GaugeSource;
  /** Request series by a number made of the route, method and status class indexes. */
  private readonly requestSeries = new Map<number, RequestSeries>();
  /** Attempt series by target origin, then outcome. */
  private readonly attemptSeries = new Map<string, Map<string, Series>>();
  /** Retry counters by target origin. */
  private readonly retries = new Map<string, PendingSeries>();
  /** gRPC call counters by route index and status. */
  private readonly grpcSeries = new Map<string, PendingSeries>();
  private readonly requestBytes: PendingSeries;
  private readonly responseBytes: PendingSeries;
  private readonly sessions: PendingSeries;
  private readonly sessionBytesIn: PendingSeries;
  private readonly sessionBytesOut: PendingSeries;
  private readonly sessionMessagesIn: PendingSeries;
  private readonly sessionMessagesOut: PendingSeries;
  /** Open WebSocket sessions, and what the counters have of each so far. */
  private readonly openSessions = new Map<RequestRecord, SessionCounted>();

  constructor(
    readonly set: MetricSet,
    readonly routes: RouteTable,
    readonly relay: string,
    /** The relay's own origin for the `target` label; null when targets are not labelled. */
    readonly target: string | null,
    pools: GaugeSource['pools'],
    targets: boolean,
  ) {
    this.source = { relay, inFlight: 0, sessionsOpen: 0, pools, targets, countOpenSessions: () => this.countOpenSessions() };
    set.sources.add(this.source);
    this.requestBytes = set.requestBytes.series({ relay });
    this.responseBytes = set.responseBytes.series({ relay });
    this.sessions = set.sessions.series({ relay });
    this.sessionBytesIn = set.sessionBytes.series({ relay, direction: 'in' });
    this.sessionBytesOut = set.sessionBytes.series({ relay, direction: 'out' });
    this.sessionMessagesIn = set.sessionMessages.series({ relay, direction: 'in' });
    this.sessionMessagesOut = set.sessionMessages.series({ relay, direction: 'out' });
  }

  start(): void {
    this.source.inFlight++;
  }

  attemptStart(_record: RequestRecord, _request: ProxyRequest): void {}

  attemptEnd(record: RequestRecord, status: number, error: RelayError | null): void {
    const outcome = error === null ? statusClasses[classIndex(status)]! : error.code;
    // Counted at its end, as the attempt: a balancer inside observe's attempt stage chooses the target after it starts.
    const target = targetOf(record, this.target);
    if (record.attempts > 1) this.countRetry(target);
    const byOutcome = seriesOf(this.attemptSeries, target);
    let series = byOutcome.get(outcome);
    if (series === undefined) {
      const labels = { relay: this.relay, target, outcome };
      series = { count: this.set.attempts.series(labels), duration: this.set.attemptDuration.series(labels) };
      byOutcome.set(outcome, series);
    }
    series.count.inc();
    series.duration.observe((record.attemptEndedAt - record.attemptStartedAt) / 1000);
  }

  private countRetry(target: string): void {
    let retries = this.retries.get(target);
    if (retries === undefined) this.retries.set(target, (retries = this.set.retries.series({ relay: this.relay, target })));
    retries.inc();
  }

  sessionOpen(record: RequestRecord): void {
    // The handshake is over: the session is counted as open, no longer as a request in flight.
    this.source.inFlight--;
    this.source.sessionsOpen++;
    this.openSessions.set(record, { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 });
    this.countRequest(record, (performance.now() - record.startedAt) / 1000);
  }

  /** Each open session's bytes and messages since the last scrape (the rest is counted at its close). */
  private countOpenSessions(): void {
    for (const [record, counted] of this.openSessions) {
      record.sessionSoFar();
      this.countSession(record, counted);
    }
  }

  /** What `record` has that the counters do not have yet; `counted` then has all of it. */
  private countSession(record: RequestRecord, counted: SessionCounted): void {
    if (record.bytesIn > counted.bytesIn) this.sessionBytesIn.inc(record.bytesIn - counted.bytesIn);
    if (record.bytesOut > counted.bytesOut) this.sessionBytesOut.inc(record.bytesOut - counted.bytesOut);
    if (record.messagesIn > counted.messagesIn) this.sessionMessagesIn.inc(record.messagesIn - counted.messagesIn);
    if (record.messagesOut > counted.messagesOut) this.sessionMessagesOut.inc(record.messagesOut - counted.messagesOut);
    counted.bytesIn = Math.max(counted.bytesIn, record.bytesIn);
    counted.bytesOut = Math.max(counted.bytesOut, record.bytesOut);
    counted.messagesIn = Math.max(counted.messagesIn, record.messagesIn);
    counted.messagesOut = Math.max(counted.messagesOut, record.messagesOut);
  }

  refused(message: RequestRefusedMessage): void {
    const route = this.routes.templates.length === 0 ? -1 : this.routes.match(message.path);
    const labels = { relay: this.relay, route: this.routes.label(route), method: methods[methodIndex(message.method)]!, status_class: statusClasses[classIndex(message.status)]! };
    this.set.requests.series({ ...labels, target: this.target ?? '' }).inc();
  }

  end(record: RequestRecord): void {
    if (record.session) {
      this.source.sessionsOpen--;
      this.sessions.inc();
      const counted = this.openSessions.get(record);
      this.openSessions.delete(record);
      // The remainder: what scrapes during the session have not counted yet.
      this.countSession(record, counted ?? { bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0 });
      return;
    }
    this.source.inFlight--;
    if (record.bytesIn > 0) this.requestBytes.inc(record.bytesIn);
    if (record.bytesOut > 0) this.responseBytes.inc(record.bytesOut);
    this.countRequest(record, record.duration / 1000);
    if (record.grpcStatus !== null || record.request.headers['content-type']?.toString().startsWith('application/grpc') === true) this.countGrpc(record);
  }

  /** A gRPC call by its status: 17 values and `other` per route, a bounded label. */
  private countGrpc(record: RequestRecord): void {
    const status = record.grpcStatus === null ? 'none' : record.grpcStatus <= 16 ? String(record.grpcStatus) : 'other';
    const key = `${record.route}:${status}`;
    let series = this.grpcSeries.get(key);
    if (series === undefined) this.grpcSeries.set(key, (series = this.set.grpcCalls.series({ relay: this.relay, route: this.routes.label(record.route), grpc_status: status })));
    series.inc();
  }

  private countRequest(record: RequestRecord, seconds: number): void {
    if (record.route === -2) record.route = this.routes.templates.length === 0 ? -1 : this.routes.match(record.request.client.originalUrl);
    const method = methodIndex(record.request.method);
    const status = classIndex(record.status);
    const key = ((record.route + 1) * methods.length + method) * statusClasses.length + status;
    let series = this.requestSeries.get(key);
    if (series === undefined) {
      const labels = { relay: this.relay, route: this.routes.label(record.route), method: methods[method]!, status_class: statusClasses[status]! };
      series = { labels, counts: new Map(), duration: this.set.duration.series(labels) };
      this.requestSeries.set(key, series);
    }
    const target = targetOf(record, this.target);
    let count = series.counts.get(target);
    if (count === undefined) series.counts.set(target, (count = this.set.requests.series({ ...series.labels, target })));
    count.inc();
    series.duration.observe(seconds);
  }
}

/**
 * A node:http request listener that serves a registry in the Prometheus text format (GET and
 * HEAD; 405 otherwise). Mount it where your scraper looks, usually `/metrics`.
 *
 * @example
 * const serveMetrics = metricsHandler(registry);
 * http.createServer((req, res) => (req.url === '/metrics' ? serveMetrics(req, res) : relay.handle(req, res)));
 */
export function metricsHandler(registry: Registry = defaultRegistry): (req: IncomingMessage, res: ServerResponse) => void {
  return function serveMetrics(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      plain(res, 405, '405 Method Not Allowed\n', { allow: 'GET, HEAD' });
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => plain(res, 500, '500 metrics unavailable\n', {}),
    );
  };
}

function plain(res: ServerResponse, status: number, body: string, headers: Record<string, string>): void {
  res.writeHead(status, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** What `metrics()` returns: the two stages, the registry and a ready `/metrics` handler. */
export interface MetricsObservation extends Observation {
  /** The registry the series are in. */
  readonly registry: Registry;
  /** `metricsHandler(registry)`. */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * Prometheus metrics with prom-client: requests by relay, route, method, status class and
 * target; request and upstream attempt latency histograms; attempts by outcome and retries;
 * in-flight requests; WebSocket sessions, their bytes and (with `@relay/ws`) their messages;
 * with `pools`, each target's health, ejection, circuit state and attempts in flight.
 * Paths are never labels: give `routes` templates for a `route` label. Returns the stages (`[m.request, retry(), m.attempt]`), the
 * registry and a `/metrics` handler.
 *
 * @example
 * const m = metrics({ registry: new Registry(), routes: ['/users/:id'] });
 * createRelay({ targetBaseUrl: 'http://api:8000', stages: [m.request, retry({ maxRetries: 2 }), m.attempt] });
 */
export function metrics(options: MetricsOptions = {}): MetricsObservation {
  const settings = metricsSettings(options);
  const { request, attempt } = createObservation([metricsFactory(settings)], null);
  return { request, attempt, registry: settings.registry, handler: metricsHandler(settings.registry) };
}
