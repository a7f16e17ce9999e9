// What the harness measures and how: the workloads, the proxies, the load generator settings shared
// by every proxy, and the command line. Nothing here starts a process.

/** Every proxy gets the same pool to the upstream: keep-alive, this many sockets, LIFO, 30 s idle. */
export const UPSTREAM_SOCKETS = 128;
export const UPSTREAM_IDLE_MS = 30_000;

/**
 * Upstreams of the balancing rows (`relay-balance`, `reply-from-balance`): one upstream process
 * listening on this many HTTP ports, each port a separate origin and keep-alive pool to the proxy.
 */
export const POOL_SIZE = 3;

/** Load generator settings, the same for every proxy. */
export const CONNECTIONS = 50;
export const PIPELINING = 1;
export const REQUEST_TIMEOUT_S = 10;

/** Workload payloads: ASCII only, so autocannon's string body has one character per byte. */
export const SMALL_BODY = '{"ok":true,"message":"hello from the upstream!!!"}';
export const SMALL_SET_COOKIE = 'sid=0123456789abcdef; Domain=upstream.internal; Path=/; HttpOnly';
export const POST_SIZE = 64 * 1024;
export const DOWNLOAD_SIZE = 10 * 1024 * 1024;
export const DOWNLOAD_CHUNK = 64 * 1024;
export const WS_MESSAGE_SIZE = 64;
/** The JSON response of `json-64k`, and what its clients accept (a browser's header: both peers pick br). */
export const JSON_SIZE = 64 * 1024;
export const JSON_ACCEPT_ENCODING = 'gzip, deflate, br';
export const WS_LARGE_MESSAGE_SIZE = 1024 * 1024;

/** `size` ASCII bytes of a repeating pattern, so a truncated or shifted body never looks right. */
export function asciiPattern(size: number): Buffer {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_';
  const buffer = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buffer[i] = alphabet.charCodeAt((i * 7 + (i >> 6)) % alphabet.length);
  return buffer;
}

/**
 * `size` bytes of realistic JSON (an array of records whose values vary), so a compressor has the
 * work a real API response gives it: neither a single repeated byte nor random noise.
 */
export function jsonDocument(size: number): Buffer {
  const records: string[] = [];
  let length = 2;
  for (let i = 0; length < size; i++) {
    const record = JSON.stringify({
      id: i,
      sku: `SKU-${(i * 7919) % 100000}`,
      name: `Product ${i} of the ${['red', 'green', 'blue', 'black'][i % 4]} series`,
      price: Math.round(((i * 37) % 1000) * 1.37 * 100) / 100,
      stock: (i * 13) % 250,
      tags: ['sale', 'new', 'popular', 'limited'].slice(0, (i % 4) + 1),
      updatedAt: new Date(Date.UTC(2026, 0, 1) + i * 3_600_000).toISOString(),
    });
    records.push(record);
    length += record.length + 1;
  }
  const text = `[${records.join(',')}]`;
  // Trim whole records until it fits, then pad with spaces (valid JSON whitespace) to the exact size.
  let body = text;
  while (body.length > size) {
    records.pop();
    body = `[${records.join(',')}]`;
  }
  return Buffer.from(body.padEnd(size, ' '));
}

export type WorkloadName = 'small-get' | 'post-64k' | 'download-10m' | 'ws-echo' | 'ws-echo-1m' | 'json-64k' | 'h2-small-get' | 'grpc-unary';

export interface Workload {
  name: WorkloadName;
  title: string;
  /** What one unit of work is, for the column headers ("req" or "msg"). */
  unit: 'req' | 'msg';
  method: 'GET' | 'POST';
  path: string;
  /** Only these proxies run it (the default: every proxy that runs every workload). */
  proxies?: ProxyName[];
}

export const workloads: Record<WorkloadName, Workload> = {
  'small-get': { name: 'small-get', title: 'Small GET (50-byte body)', unit: 'req', method: 'GET', path: '/small?page=1' },
  'post-64k': { name: 'post-64k', title: '64 KiB POST echo', unit: 'req', method: 'POST', path: '/echo' },
  'download-10m': { name: 'download-10m', title: '10 MiB download, streamed', unit: 'req', method: 'GET', path: '/download' },
  'ws-echo': { name: 'ws-echo', title: `WebSocket echo (${WS_MESSAGE_SIZE}-byte text messages, one in flight per connection)`, unit: 'msg', method: 'GET', path: '/ws' },
  'json-64k': {
    name: 'json-64k',
    title: '64 KiB JSON response, compressed by the proxy (Accept-Encoding: gzip, deflate, br)',
    unit: 'req',
    method: 'GET',
    path: '/json64k',
    proxies: ['relay-compress', 'express-compress'],
  },
  'ws-echo-1m': { name: 'ws-echo-1m', title: 'WebSocket echo (1 MiB binary messages, one in flight per connection)', unit: 'msg', method: 'GET', path: '/ws' },
  'h2-small-get': {
    name: 'h2-small-get',
    title: 'Small GET from an HTTP/2 client (h2c, every stream on one connection) to an HTTP/1.1 upstream',
    unit: 'req',
    method: 'GET',
    path: '/small?page=1',
    proxies: ['direct', 'relay-h2-front', 'fastify-http-proxy-h2'],
  },
  'grpc-unary': {
    name: 'grpc-unary',
    title: 'gRPC unary calls (50-byte message echoed; @grpc/grpc-js client and server, one channel)',
    unit: 'req',
    method: 'POST',
    path: '/bench.Echo/Unary',
    proxies: ['direct', 'relay-grpc', 'fastify-http-proxy-grpc'],
  },
};

/** Whether a workload is spoken over HTTP/2 by its client (its own load generator, not autocannon). */
export function isHttp2(workload: Workload): boolean {
  return workload.name === 'h2-small-get' || workload.name === 'grpc-unary';
}

/** Whether a workload is a WebSocket one (run on the proxies that relay WebSockets). */
export function isWebSocket(workload: Workload): boolean {
  return workload.name === 'ws-echo' || workload.name === 'ws-echo-1m';
}

export type ProxyName =
  | 'direct'
  | 'pipe'
  | 'http-proxy'
  | 'reply-from'
  | 'reply-from-balance'
  | 'express-http-proxy'
  | 'relay'
  | 'relay-got'
  | 'relay-undici'
  | 'relay-h2'
  | 'relay-stages'
  | 'relay-ratelimit'
  | 'relay-balance'
  | 'relay-compress'
  | 'express-compress'
  | 'relay-gateway'
  | 'relay-observe'
  | 'relay-observe-als'
  | 'relay-observe-api'
  | 'relay-als'
  | 'relay-ws-hook'
  | 'relay-routing'
  | 'relay-fastify'
  | 'relay-fastify-undici'
  | 'relay-express'
  | 'fastify-http-proxy'
  | 'relay-hono-fetch'
  | 'hono-proxy'
  | 'relay-h2-front'
  | 'fastify-http-proxy-h2'
  | 'relay-grpc'
  | 'fastify-http-proxy-grpc';

export interface ProxyInfo {
  name: ProxyName;
  /** The row label; `{version}` is filled in with the installed peer's version. */
  label: string;
  /** The npm package whose version goes into the label. */
  versionOf?: string;
  /** Runs the WebSocket workloads too. */
  websocket: boolean;
  /** Runs only these workloads (a proxy built for one comparison). Default: every workload. */
  only?: WorkloadName[];
  /** Runs only the WebSocket workloads (a WebSocket variant of another row). */
  websocketOnly?: boolean;
}

export const proxies: ProxyInfo[] = [
  { name: 'direct', label: 'direct to upstream (the limit)', websocket: true },
  { name: 'pipe', label: 'node:http pipe proxy (the floor)', websocket: true },
  { name: 'http-proxy', label: 'http-proxy {version}', versionOf: 'http-proxy', websocket: true },
  { name: 'reply-from', label: '@fastify/reply-from {version} (fastify 5)', versionOf: '@fastify/reply-from', websocket: false },
  {
    name: 'reply-from-balance',
    label: '@fastify/reply-from {version} (fastify 5), base: [3 upstreams] (undici BalancedPool)',
    versionOf: '@fastify/reply-from',
    websocket: false,
    only: ['small-get'],
  },
  { name: 'express-http-proxy', label: 'express-http-proxy {version} (express 5)', versionOf: 'express-http-proxy', websocket: false },
  { name: 'relay', label: 'Relay, default transport', websocket: true },
  { name: 'relay-got', label: 'Relay, got transport', websocket: false },
  { name: 'relay-undici', label: 'Relay, undiciTransport (@relay/core/undici)', websocket: false, only: ['small-get', 'post-64k', 'download-10m'] },
  { name: 'relay-h2', label: 'Relay, http2Transport → h2c upstream', websocket: false, only: ['small-get', 'post-64k'] },
  { name: 'relay-stages', label: 'Relay + headers, cookies, retry', websocket: false },
  { name: 'relay-ratelimit', label: 'Relay + rateLimit (@relay/limits, memory store, never reached)', websocket: false },
  { name: 'relay-balance', label: 'Relay + balance over 3 upstreams (@relay/balance, round robin, outlier detection on)', websocket: false, only: ['small-get'] },
  { name: 'relay-compress', label: 'Relay + compress() (@relay/body)', websocket: false, only: ['json-64k'] },
  {
    name: 'express-compress',
    label: 'compression {version} + http-proxy-middleware (express 5)',
    versionOf: 'compression',
    websocket: false,
    only: ['json-64k'],
  },
  { name: 'relay-gateway', label: 'relay serve gateway.yaml (1 worker, one route)', websocket: true },
  { name: 'relay-observe', label: 'Relay + @relay/observe: access log, metrics, tracing (no-op exporter)', websocket: false },
  {
    name: 'relay-observe-als',
    label: "Relay + @relay/observe, OpenTelemetry's AsyncLocalStorage context manager on",
    websocket: false,
    only: ['small-get'],
  },
  {
    name: 'relay-observe-api',
    label: 'Relay + @relay/observe, tracing through @opentelemetry/api with no SDK (no span recorded)',
    websocket: false,
    only: ['small-get'],
  },
  { name: 'relay-als', label: "Relay, OpenTelemetry's AsyncLocalStorage context manager on (no observe)", websocket: false, only: ['small-get'] },
  { name: 'relay-ws-hook', label: 'Relay, WebSocket with a pass-through message hook', websocket: true, websocketOnly: true },
  { name: 'relay-routing', label: 'Relay + routes(), when(), rewritePath() (@relay/routing)', websocket: false, only: ['small-get'] },
  { name: 'relay-fastify', label: 'Relay as a Fastify 5 plugin (@relay/frameworks/fastify)', websocket: true },
  { name: 'relay-fastify-undici', label: 'Relay as a Fastify 5 plugin, undiciTransport', websocket: false, only: ['small-get', 'post-64k'] },
  { name: 'relay-express', label: 'Relay in Express 5 through toConnect (@relay/connect-adapter)', websocket: false, only: ['small-get', 'post-64k'] },
  { name: 'fastify-http-proxy', label: '@fastify/http-proxy {version} (fastify 5)', versionOf: '@fastify/http-proxy', websocket: true },
  { name: 'relay-hono-fetch', label: 'Relay through relay.fetch in a Hono app (@hono/node-server)', websocket: false, only: ['small-get', 'post-64k', 'download-10m'] },
  { name: 'hono-proxy', label: 'hono/proxy proxy() in Hono {version} (@hono/node-server)', versionOf: 'hono', websocket: false, only: ['small-get', 'post-64k', 'download-10m'] },
  { name: 'relay-h2-front', label: 'Relay on http2.createServer (h2c), default transport', websocket: false, only: ['h2-small-get'] },
  {
    name: 'fastify-http-proxy-h2',
    label: '@fastify/http-proxy {version} on fastify 5 with http2: true (h2c)',
    versionOf: '@fastify/http-proxy',
    websocket: false,
    only: ['h2-small-get'],
  },
  { name: 'relay-grpc', label: 'Relay on http2.createServer (h2c), http2Transport → gRPC server', websocket: false, only: ['grpc-unary'] },
  {
    name: 'fastify-http-proxy-grpc',
    label: '@fastify/http-proxy {version} on fastify 5, http2 both ways',
    versionOf: '@fastify/http-proxy',
    websocket: false,
    only: ['grpc-unary'],
  },
];

/** Whether `proxy` takes part in `workload`. */
export function runsWorkload(proxy: ProxyName, workload: Workload): boolean {
  const info = proxies.find((p) => p.name === proxy)!;
  if (isWebSocket(workload) ? !info.websocket : info.websocketOnly === true) return false;
  if (info.only !== undefined && !info.only.includes(workload.name)) return false;
  return workload.proxies === undefined || workload.proxies.includes(proxy);
}

export interface Timing {
  rounds: number;
  /** Seconds of warm-up per proxy before round 1 (not measured). */
  warmup: number;
  /** Seconds of each measured window. */
  duration: number;
  /**
   * Pairs of windows per ratio target in the paired phase (0: none): the target's two proxies
   * alternate back to back (A B, B A, …), so a slower or faster spell of the shared machine
   * falls on both. Windows a round apart (a minute with every proxy) swing by ±30 %.
   */
  pairs: number;
}

/** The full run, every workload: about 38 minutes on the 2-core machine, the paired phase included. */
export const fullTiming: Record<WorkloadName, Timing> = {
  'small-get': { rounds: 9, warmup: 3, duration: 3, pairs: 8 },
  'post-64k': { rounds: 5, warmup: 2, duration: 3, pairs: 6 },
  'download-10m': { rounds: 3, warmup: 2, duration: 4, pairs: 0 },
  'ws-echo': { rounds: 4, warmup: 1.5, duration: 3, pairs: 0 },
  'json-64k': { rounds: 5, warmup: 2, duration: 3, pairs: 8 },
  'ws-echo-1m': { rounds: 3, warmup: 1.5, duration: 3, pairs: 0 },
  'h2-small-get': { rounds: 5, warmup: 2, duration: 3, pairs: 0 },
  'grpc-unary': { rounds: 5, warmup: 2, duration: 3, pairs: 0 },
};

/** `--quick`: by default small GET and 64 KiB POST only, about five minutes with every proxy. */
export const quickTiming: Record<WorkloadName, Timing> = {
  'small-get': { rounds: 3, warmup: 1, duration: 2, pairs: 0 },
  'post-64k': { rounds: 3, warmup: 0.5, duration: 1, pairs: 0 },
  'download-10m': { rounds: 3, warmup: 1, duration: 3, pairs: 0 },
  'ws-echo': { rounds: 3, warmup: 1, duration: 1.5, pairs: 0 },
  'json-64k': { rounds: 3, warmup: 1, duration: 2, pairs: 0 },
  'ws-echo-1m': { rounds: 3, warmup: 1, duration: 1.5, pairs: 0 },
  'h2-small-get': { rounds: 3, warmup: 1, duration: 2, pairs: 0 },
  'grpc-unary': { rounds: 3, warmup: 1, duration: 2, pairs: 0 },
};
export const quickWorkloads: WorkloadName[] = ['small-get', 'post-64k'];

export interface Settings {
  quick: boolean;
  workloads: WorkloadName[];
  proxies: ProxyName[];
  timing: Partial<Record<WorkloadName, Timing>>;
  connections: number;
  /** Markdown report; null prints it only. */
  out: string | null;
  /** Raw results as JSON; null writes none. */
  json: string | null;
  /** A line for the report's header (say the machine was busy). */
  note: string | null;
  /** The command line, as the report shows it. */
  command: string;
}

const usage = `usage: pnpm bench [--quick] [--only p1,p2] [--workload w1,w2] [--rounds N] [--duration S] [--warmup S]
                  [--pairs N]                   [--connections N] [--out FILE] [--json FILE] [--note TEXT]
  proxies:   ${proxies.map((p) => p.name).join(', ')}
  workloads: ${Object.keys(workloads).join(', ')}
  A full run of every proxy writes benchmarks/RESULTS.md; a --quick run or a run with --only prints its tables (or writes --out).`;

/** Parses the command line; throws with the usage text on a mistake. */
export function parseArgs(argv: string[], defaultOut: string): Settings {
  const flags = new Map<string, string>();
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') continue;
    if (arg === '--quick') quick = true;
    else if (arg === '--help' || arg === '-h') throw Object.assign(new Error(usage), { exitCode: 0 });
    else if (arg.startsWith('--') && i + 1 < argv.length) flags.set(arg.slice(2), argv[++i]!);
    else throw new Error(`unknown argument ${arg}\n${usage}`);
  }
  for (const key of flags.keys()) {
    if (!['only', 'workload', 'rounds', 'duration', 'warmup', 'pairs', 'connections', 'out', 'json', 'note'].includes(key)) {
      throw new Error(`unknown option --${key}\n${usage}`);
    }
  }
  const list = <T extends string>(key: string, known: readonly T[], fallback: T[]): T[] => {
    const value = flags.get(key);
    if (value === undefined) return fallback;
    const names = value.split(',').map((name) => name.trim()).filter(Boolean);
    for (const name of names) if (!known.includes(name as T)) throw new Error(`--${key}: unknown name ${name}\n${usage}`);
    return names as T[];
  };
  const number = (key: string): number | undefined => {
    const value = flags.get(key);
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`--${key} must be a positive number, got ${value}`);
    return parsed;
  };
  const base = quick ? quickTiming : fullTiming;
  const chosen = list('workload', Object.keys(workloads) as WorkloadName[], quick ? quickWorkloads : (Object.keys(workloads) as WorkloadName[]));
  const rounds = number('rounds');
  const duration = number('duration');
  const warmup = number('warmup');
  // --pairs 0 turns the paired phase off.
  const pairs = flags.get('pairs') === '0' ? 0 : number('pairs');
  const timing: Partial<Record<WorkloadName, Timing>> = {};
  for (const name of chosen) {
    const t = base[name];
    timing[name] = {
      rounds: rounds === undefined ? t.rounds : Math.round(rounds),
      duration: duration ?? t.duration,
      warmup: warmup ?? t.warmup,
      pairs: pairs === undefined ? t.pairs : Math.round(pairs),
    };
  }
  const only = list('only', proxies.map((p) => p.name), proxies.map((p) => p.name));
  const everyProxy = only.length === proxies.length;
  return {
    quick,
    workloads: chosen,
    proxies: proxies.map((p) => p.name).filter((name) => only.includes(name)),
    timing,
    connections: Math.round(number('connections') ?? CONNECTIONS),
    // Only a full run of every proxy replaces RESULTS.md: a --quick run's short windows are no record to keep.
    out: flags.get('out') ?? (everyProxy && !quick ? defaultOut : null),
    json: flags.get('json') ?? null,
    note: flags.get('note') ?? null,
    command: ['pnpm bench', ...argv.filter((arg, i) => arg !== '--' && arg !== '--note' && argv[i - 1] !== '--note')].join(' '),
  };
}
