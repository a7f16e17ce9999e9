import { isIP } from 'node:net';
import { assertSafePath, decodeUnreserved, maxTimerDelay, withoutUserinfo } from '@relay/core/transport';
import { z } from 'zod';
import { featureShape } from './features.js';

const milliseconds = z.number({ invalid_type_error: 'expected a number of milliseconds' }).int().nonnegative();
/** A duration a node timer waits: node fires a longer one after 1 ms. Refused here, so `relay check` and a reload say so. */
const timerMilliseconds = milliseconds.max(maxTimerDelay, `expected at most ${maxTimerDelay} ms (about 24.8 days, node's timer limit)`);
const port = z.number({ invalid_type_error: 'expected a port number' }).int().min(0).max(65_535);

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

const upstreamUrl = z
  .string({ invalid_type_error: 'expected an absolute http:// or https:// URL' })
  // Without its password: a config error goes to stderr and the log.
  .refine(isHttpUrl, (value) => ({ message: `expected an absolute http:// or https:// URL, got "${withoutUserinfo(value)}"` }));

/**
 * A path prefix to match: `/`, `/api`, `/api/v1`; no query, no dot segments, no empty segments.
 * Its percent-encoding is normalised as the request's is before matching (`/%7Euser` is `/~user`,
 * `/caf%c3%a9` is `/caf%C3%A9`), or a prefix written with an escape could never match; the dot
 * check runs after, so `/%2E%2E` is refused like `/..`.
 */
/** Whether a config path passes the relay's own check of client paths (dot segments hidden behind %2F, double escapes …). */
function isSafePath(value: string): boolean {
  try {
    assertSafePath(value);
    return true;
  } catch {
    return false;
  }
}

const pathPrefix = z
  .string()
  .regex(/^\/(?:[A-Za-z0-9._~!$&'()*+,;=:@%-]+(?:\/|$))*$/, 'expected a path such as /api (no query, no //)')
  .transform(decodeUnreserved)
  .refine((value) => !/(^|\/)\.{1,2}(\/|$)/.test(value) && isSafePath(value), 'expected a path without . or .. segments')
  .transform((value) => (value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value));

/** A host to match: `example.com`, `*.example.com` (one label), `*`, or an IP address; no port. */
const hostPattern = z
  .string()
  .transform((value) => value.toLowerCase())
  .refine(
    (value) => value === '*' || isIP(value) !== 0 || /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(value),
    (value) => ({ message: `expected a host name such as api.example.com or *.example.com (no port), got "${value}"` }),
  );

const method = z
  .string()
  .regex(/^[A-Za-z]+$/, 'expected an HTTP method such as GET')
  .transform((value) => value.toUpperCase());

/** Per-attempt upstream timeouts, as `createRelay({ timeout })` takes them. */
const attemptTimeouts = z.object({ connect: timerMilliseconds, read: timerMilliseconds, write: timerMilliseconds, pool: timerMilliseconds }).partial().strict();

const upstreamTls = z
  .object({
    /** A PEM file of extra trusted certificate authorities, relative to the config file. */
    ca: z.string().min(1),
    rejectUnauthorized: z.boolean(),
    servername: z.string().min(1),
  })
  .partial()
  .strict();

/** Whether a URL is an origin alone: a pool's targets share the route's path (`upstreamPrefix`). */
function isOrigin(value: string): boolean {
  // A value that is no URL was refused already (zod runs every refinement): not said twice.
  if (!URL.canParse(value)) return true;
  const url = new URL(value);
  return url.pathname === '/' && url.search === '' && url.hash === '';
}

/** Whether a URL has no user or password (a value that is no URL was refused already). */
function hasNoCredentials(value: string): boolean {
  if (!URL.canParse(value)) return true;
  const url = new URL(value);
  return url.username === '' && url.password === '';
}

/**
 * One target of a pool: an origin without credentials (balance() and core refuse them; said here,
 * at the target's own path and line, rather than as the route's balance failing to build).
 */
const targetUrl = upstreamUrl
  .refine(isOrigin, (value) => ({
    message: `expected an origin such as http://10.0.0.1:8000, without a path (the path goes in upstreamPrefix), got "${withoutUserinfo(value)}"`,
  }))
  .refine(hasNoCredentials, { message: 'expected no credentials in the URL (set an Authorization header with headers:)' });

/**
 * One target of a route that lists several: its origin (`url`) or a name whose every address is
 * one (`dns`, looked up every `interval` ms), the TLS its relay connects with, its share of the traffic.
 * One object rather than a union of two, so an error names its key (`upstream[0].dns`).
 */
const poolTargetObject = z
  .object({
    url: targetUrl.optional(),
    // A name to look up: an origin, as `url` is.
    dns: targetUrl.optional(),
    interval: timerMilliseconds.min(1, 'expected at least 1 ms').optional(),
    tls: upstreamTls.optional(),
    weight: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine(urlOrDns);

function urlOrDns(target: { url?: string; dns?: string; interval?: number }, context: z.RefinementCtx): void {
  if (target.url !== undefined && target.dns !== undefined) context.addIssue({ code: z.ZodIssueCode.custom, message: 'expected url or dns, not both' });
  else if (target.url === undefined && target.dns === undefined) context.addIssue({ code: z.ZodIssueCode.custom, message: 'expected url (an origin) or dns (a name to look up)' });
  else if (target.url !== undefined && target.interval !== undefined) context.addIssue({ code: z.ZodIssueCode.custom, path: ['interval'], message: 'expected interval only with dns' });
}

const poolTarget = z.union([targetUrl, poolTargetObject], { errorMap: () => ({ message: 'expected a URL string, { url, tls, weight } or { dns, interval, tls, weight }' }) });

/**
 * A route's targets are one relay's: one set of TLS settings (core's `tls` is per relay) and each
 * origin once (`balance()` refuses a target listed twice; said here, with its line).
 */
function onePool(targets: Array<z.output<typeof poolTarget>>, context: z.RefinementCtx): void {
  const seen = new Set<string>();
  let tls: string | undefined;
  targets.forEach((target, index) => {
    const entry = typeof target === 'string' ? { url: target, dns: undefined, tls: undefined } : target;
    const url = entry.url ?? entry.dns ?? '';
    const origin = URL.canParse(url) ? new URL(url).origin : url;
    if (seen.has(origin)) context.addIssue({ code: z.ZodIssueCode.custom, path: [index], message: `${withoutUserinfo(url)} is listed twice` });
    seen.add(origin);
    if (entry.tls === undefined) return;
    const shown = JSON.stringify(entry.tls);
    if (tls !== undefined && shown !== tls) {
      context.addIssue({ code: z.ZodIssueCode.custom, path: [index, 'tls'], message: 'expected the same tls as the targets before it (a route connects to its targets with one tls)' });
    }
    tls ??= shown;
  });
}

const upstream = z.union(
  [upstreamUrl, z.object({ url: upstreamUrl, tls: upstreamTls.optional() }).strict(), z.array(poolTarget).min(1, 'expected at least one target').superRefine(onePool)],
  { errorMap: () => ({ message: 'expected a URL string, { url, tls } or a list of them' }) },
);

const match = z
  .object({
    path: pathPrefix.default('/'),
    host: z.union([hostPattern, z.array(hostPattern).min(1)], { errorMap: () => ({ message: 'expected a host or a list of hosts' }) }).optional(),
    methods: z.array(method).min(1).optional(),
  })
  .strict();

const route = z
  .object({
    name: z.string().regex(/^[\w.-]{1,64}$/, 'expected a name of letters, digits, . _ or -').optional(),
    match: match.default({}),
    upstream,
    upstreamPrefix: pathPrefix.optional(),
    preserveHost: z.boolean().optional(),
    stripPrefix: z.boolean().default(true),
    timeout: attemptTimeouts.optional(),
    ...featureShape(),
  })
  .strict();

/** Whether a listen host can be bound: an IP address (no brackets) or a host name (no port, no scheme). */
function isBindableHost(value: string): boolean {
  return isIP(value) !== 0 || /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(value);
}

/** Checked here so `relay check` refuses it, rather than `relay serve` failing to listen. */
const listenHost = z
  .string({ invalid_type_error: 'expected an IP address or a host name to bind' })
  .refine(isBindableHost, (value) => ({
    message: `expected an IP address or a host name to bind, such as 0.0.0.0, :: or localhost (the port goes in port), got "${value}"`,
  }));

const listenerName = z.string().regex(/^[\w.-]{1,32}$/, 'expected a name of letters, digits, . _ or -');

const listener = z
  .object({
    /** Names the listener for `health`/`metrics`/`status.listeners`. */
    name: listenerName.optional(),
    host: listenHost.default('0.0.0.0'),
    port,
    tls: z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict().optional(),
  })
  .strict();

/** A built-in endpoint: off, or its path and (optionally) the named listeners it answers on. */
const endpoint = z.union([z.literal(false), z.object({ path: pathPrefix, listeners: z.array(listenerName).min(1).optional() }).strict()], {
  errorMap: () => ({ message: 'expected false or { path, listeners }' }),
});

/** Every listener an endpoint names exists. */
function knownListeners(config: { listen: Array<{ name?: string }>; [key: string]: unknown }, context: z.RefinementCtx): void {
  const names = config.listen.flatMap((listener) => (listener.name === undefined ? [] : [listener.name]));
  for (const key of ['health', 'metrics', 'status'] as const) {
    const value = config[key] as false | { listeners?: string[] };
    value !== false && value.listeners?.forEach((name, index) => {
      if (names.includes(name)) return;
      const known = names.length === 0 ? 'no listener has a name' : `names: ${names.join(', ')}`;
      context.addIssue({ code: z.ZodIssueCode.custom, path: [key, 'listeners', index], message: `no listener is named "${name}" (${known})` });
    });
  }
}

/** Two listeners with one `name` would make an endpoint's `listeners` ambiguous. */
function distinctListenerNames(config: { listen: Array<{ name?: string }> }, context: z.RefinementCtx): void {
  config.listen.forEach((listener, index) => {
    const first = config.listen.findIndex((other) => other.name === listener.name);
    if (listener.name === undefined || first === index) return;
    context.addIssue({ code: z.ZodIssueCode.custom, path: ['listen', index, 'name'], message: `"${listener.name}" already names listen[${first}]: each listener needs its own name` });
  });
}

/**
 * Two listeners on one address and port: the second could never listen (EADDRINUSE at serve), so
 * `relay check` refuses it. Port 0 picks a free port each time and may repeat.
 */
function distinctListenAddresses(config: { listen: Array<{ host: string; port: number }> }, context: z.RefinementCtx): void {
  const hosts = config.listen.map((listener) => normalHost(listener.host));
  config.listen.forEach((listener, index) => {
    if (listener.port === 0) return;
    const first = config.listen.findIndex((other, at) => at < index && other.port === listener.port && bindsOver(hosts[at]!, hosts[index]!));
    if (first === -1) return;
    context.addIssue({ code: z.ZodIssueCode.custom, path: ['listen', index], message: `${listener.host} port ${listener.port} is also listen[${first}]'s: each listener needs its own address and port` });
  });
}

/**
 * Whether two listen hosts on one port take the same address: the same host, or a wildcard and an
 * address it covers (`0.0.0.0` every IPv4 one; `::`, dual-stack as node listens on it, every one).
 * Names (`localhost`) are only compared as written: what they resolve to is known when they bind.
 */
function bindsOver(a: string, b: string): boolean {
  if (a === b) return true;
  return covers(a, b) || covers(b, a);
}

function covers(wildcard: string, host: string): boolean {
  if (wildcard === '::') return isIP(host) !== 0;
  return wildcard === '0.0.0.0' && isIP(host) === 4;
}

/** A listen host as the system binds it: case and a final dot aside, an IPv6 address in its shortest form (`::0` is `::`). */
function normalHost(host: string): string {
  if (isIP(host) === 6) return new URL(`http://[${host}]`).hostname.slice(1, -1);
  return host.toLowerCase().replace(/\.$/, '');
}

type EndpointKey = 'health' | 'metrics' | 'status' | 'status.json';
const endpointDefaults: Record<string, string> = { health: '/healthz', metrics: '/metrics' };

/**
 * Two endpoints on one path and a listener they share: one of them could never answer (`status: {
 * path: /metrics }` with `metrics` on). The issue goes to the one the file sets (not a default).
 */
function distinctEndpointPaths(config: Record<string, unknown>, context: z.RefinementCtx): void {
  const on: Array<{ key: EndpointKey; path: string; listeners: string[] | undefined }> = [];
  for (const key of ['health', 'metrics', 'status'] as const) {
    const value = config[key] as false | { path: string; listeners?: string[] };
    if (value === false) continue;
    on.push({ key, path: value.path, listeners: value.listeners });
    if (key === 'status') on.push({ key: 'status.json', path: `${value.path}.json`, listeners: value.listeners });
  }
  on.forEach((b, index) => {
    const a = on.slice(0, index).find((other) => other.path === b.path && sharesListener(other.listeners, b.listeners));
    if (a === undefined) return;
    const [reported, other] = endpointDefaults[b.key] === b.path ? [a, b] : [b, a];
    const key = reported.key === 'status.json' ? 'status' : reported.key;
    const what = reported.key === 'status.json' ? `its data (${reported.path})` : `"${reported.path}"`;
    context.addIssue({ code: z.ZodIssueCode.custom, path: [key, 'path'], message: `${what} is also ${other.key}'s path on the same listeners: each endpoint needs its own path` });
  });
}

function sharesListener(a: string[] | undefined, b: string[] | undefined): boolean {
  return a === undefined || b === undefined || a.some((name) => b.includes(name));
}

function isAddressOrCidr(value: string): boolean {
  const [address, bits, extra] = value.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  const prefix = Number(bits);
  return /^\d{1,3}$/.test(bits) && prefix <= (family === 4 ? 32 : 128);
}

const trustProxy = z.union(
  [z.boolean(), z.array(z.string().refine(isAddressOrCidr, (value) => ({ message: `expected an IP address or CIDR, got "${value}"` }))).min(1)],
  { errorMap: () => ({ message: 'expected true, false or a list of addresses and CIDRs' }) },
);

/** Whether a string is a URL ioredis connects to: `redis://` or `rediss://` (TLS). */
function isRedisUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
}

/**
 * A Redis URL as messages and log lines show it: without its user and password. One that is not
 * a URL and still has an `@` after that (`redis://:a/b@host`) may hide a password where
 * `withoutUserinfo` does not look, so it is not shown at all.
 *
 * @example
 * shownRedisUrl('redis://:secret@10.0.0.5:6379/0'); // 'redis://10.0.0.5:6379/0'
 */
export function shownRedisUrl(value: string): string {
  // ioredis takes any client option from the query (`?password=`): the query is never shown.
  const query = value.indexOf('?');
  const shown = withoutUserinfo(query === -1 ? value : value.slice(0, query));
  return shown.includes('@') ? '(not shown: it has an @ outside a user:password@ part)' : shown;
}

const redisUrl = z
  .string({ invalid_type_error: 'expected a redis:// or rediss:// URL' })
  .refine(isRedisUrl, (value) => ({ message: `expected a redis:// or rediss:// URL such as redis://127.0.0.1:6379, got "${shownRedisUrl(value)}"` }));

/**
 * The Redis every route's `rateLimit` counts in (unless the limit says `store: memory`), shared by
 * every gateway instance given the same `url` and `prefix`: the gateway opens one ioredis client.
 */
const redis = z
  .object({
    url: redisUrl,
    /** Prefix of every key the limits write, before the route's label and the limit's name. Default `relay:limits:`. */
    prefix: z.string().min(1).optional(),
    /** Longest wait for one Redis call, in ms: past it the limit's `failOpen` decides. Default 200. */
    timeout: timerMilliseconds.positive('expected a number of milliseconds above 0').optional(),
  })
  .strict();

/** A `rateLimit` item with `store: redis` needs the top-level `redis` block. */
function redisWhereAsked(config: { redis?: unknown; routes: Array<{ rateLimit?: { store?: string } | Array<{ store?: string }> }> }, context: z.RefinementCtx): void {
  if (config.redis !== undefined) return;
  config.routes.forEach((route, index) => {
    const limits = route.rateLimit === undefined ? [] : Array.isArray(route.rateLimit) ? route.rateLimit : [route.rateLimit];
    limits.forEach((limit, item) => {
      if (limit.store !== 'redis') return;
      const at = Array.isArray(route.rateLimit) ? ['routes', index, 'rateLimit', item, 'store'] : ['routes', index, 'rateLimit', 'store'];
      context.addIssue({ code: z.ZodIssueCode.custom, path: at, message: 'store: redis needs a top-level redis: { url } block' });
    });
  });
}

/**
 * The whole config file's schema: strict objects, defaults filled in.
 *
 * @example
 * const result = gatewayConfigSchema.safeParse(data);
 */
export const gatewayConfigSchema = z
  .object({
    listen: z.array(listener).min(1, 'expected at least one listener'),
    trustProxy: trustProxy.optional(),
    redis: redis.optional(),
    timeouts: attemptTimeouts
      // reloadDrain is only compared against the clock (no timer waits for it): any length.
      .extend({ shutdown: timerMilliseconds, reloadDrain: milliseconds })
      .partial()
      .strict()
      .default({}),
    health: endpoint.default({ path: '/healthz' }),
    metrics: endpoint.default({ path: '/metrics' }),
    status: endpoint.default(false),
    routes: z.array(route).min(1, 'expected at least one route'),
  })
  .strict()
  .superRefine((config, context) => {
    knownListeners(config, context);
    distinctListenerNames(config, context);
    distinctListenAddresses(config, context);
    distinctEndpointPaths(config, context);
    redisWhereAsked(config, context);
  });

/** A gateway config as written (defaults may be left out): the shape of gateway.yaml and of a `.ts` config's default export. */
export type GatewayConfig = z.input<typeof gatewayConfigSchema>;
/** A validated config with its defaults filled in. */
export type ResolvedConfig = z.output<typeof gatewayConfigSchema>;
/** The validated `redis` block. */
export type RedisSettings = NonNullable<ResolvedConfig['redis']>;
/** One validated route. */
export type ResolvedRoute = ResolvedConfig['routes'][number];

/**
 * Types a config module: `export default defineConfig({ … })` in `gateway.config.ts` gets
 * completion and type errors; the config is still validated when the gateway loads it.
 *
 * @example
 * export default defineConfig({
 *   listen: [{ host: '127.0.0.1', port: 8080 }],
 *   routes: [{ match: { path: '/api' }, upstream: 'http://127.0.0.1:9000' }],
 * });
 */
export function defineConfig(config: GatewayConfig): GatewayConfig {
  return config;
}
