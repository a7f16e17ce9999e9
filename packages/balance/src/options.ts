import { assertKnownKeys, errorStatus, type RelayErrorCode } from '@relay/core';
import { assertTimerDelay, nearestName } from '@relay/core/transport';

/** One upstream: a URL (`http://10.0.0.1:8000`, `unix:/run/app.sock`) and its share of the traffic. */
export interface StaticTarget {
  /** The upstream origin: `http(s)://host:port` or `unix:/path.sock`. No path: the relay's `targetBaseUrl` carries it. */
  url: string;
  /** Its share relative to the others (round robin, least in-flight, hashing). Default 1. */
  weight?: number;
}

/** Every A/AAAA record of a name, each one a target, looked up again every `interval` ms. */
export interface DnsTarget {
  /** `http(s)://name:port`: the name is resolved; each address is a target sent `Host: name:port`. */
  dns: string;
  /** How often the name is resolved again, in ms. Default 30 000. */
  interval?: number;
  /** The weight of each address. Default 1. */
  weight?: number;
}

/** A target as `balance()` and `setTargets()` take it: a URL string, `{ url, weight }` or `{ dns, interval }`. */
export type TargetSpec = string | StaticTarget | DnsTarget;

/** Where a hashing strategy reads its key. A request without it is balanced by round robin. */
export type HashKey = 'client' | { readonly header: string } | { readonly cookie: string };

/** Options of the active health checks. Times are in ms. */
export interface HealthCheckOptions {
  /** The path asked on every target. Required, e.g. `/health`; no space, control character or `#` (percent-encode them). */
  path: string;
  /** Time between two checks of a target. Default 5 000. */
  interval?: number;
  /** Longest wait for a check's response head. Default 2 000. */
  timeout?: number;
  /** Consecutive passing checks that make an unhealthy target healthy. Default 2. */
  healthyThreshold?: number;
  /** Consecutive failing checks that make a healthy target unhealthy. Default 3. */
  unhealthyThreshold?: number;
  /** Statuses that pass; at least one. Default every 2xx and 3xx. */
  statuses?: readonly number[];
  /**
   * `'http2'`: checks speak HTTP/2 (h2c with prior knowledge to `http:` targets, ALPN `h2` to `https:` ones), for
   * targets behind `http2Transport` that speak nothing else (gRPC, h2c-only servers). Default `'http1'`.
   */
  protocol?: HealthProtocol;
}

/** The protocol of the health checks. */
export type HealthProtocol = 'http1' | 'http2';

/** Options of the passive outlier detection (what ordinary requests tell about a target). */
export interface OutlierOptions {
  /** Consecutive failures that eject a target. Default 5 (Envoy's `consecutive_5xx`). */
  consecutiveFailures?: number;
  /** The first ejection's length in ms; the n-th lasts n times as long. Default 30 000. */
  baseEjectionTime?: number;
  /** The longest ejection, in ms. Default 300 000. */
  maxEjectionTime?: number;
  /** Most targets ejected at once, as a percentage of all; at least one may always be. Default 50. */
  maxEjectionPercent?: number;
  /** Response statuses that count as failures (`[]`: none, only `errors` count). Default `[502, 503, 504]`. */
  statuses?: readonly number[];
  /**
   * `RelayError` codes that count as failures. Default unreachable, reset, TLS, protocol, connect and read timeouts.
   * An attempt `retry({ deadline })` cut while it waited on its target (`ERR_DEADLINE`) counts as a read timeout.
   */
  errors?: readonly RelayErrorCode[];
}

/** Per-target circuit breaking. */
export interface CircuitOptions {
  /** Most attempts in progress on one target. Required. */
  maxRequests: number;
  /** Attempts that may wait for a free slot on a full target, each at most the relay's `timeout.pool` (then 503); beyond them, 503 at once. Default 0. */
  maxPending?: number;
  /** The `Retry-After` (seconds) of the 503. Default 1. */
  retryAfter?: number;
}

/** How a target is chosen. */
export type Strategy = 'round-robin' | 'least-request' | 'hash';

/** Options of `balance()`. */
export interface BalanceOptions {
  /** The upstreams. Required (may be empty, then replaced with `setTargets`). */
  targets: readonly TargetSpec[];
  /** `'round-robin'` (smooth weighted, as nginx), `'least-request'` (power of two choices; weighted by `weight / (inFlight + 1)` when weights differ) or `'hash'`. Default `'round-robin'`. */
  strategy?: Strategy;
  /** The key of `'hash'`: `'client'` (the client's address), `{ header }` or `{ cookie }`. Default `'client'`. */
  hashKey?: HashKey;
  /** Active health checks; off when absent. */
  healthCheck?: HealthCheckOptions;
  /** Passive outlier detection; on by default, `false` turns it off. */
  outlier?: OutlierOptions | false;
  /** Circuit breaking per target; off when absent. */
  circuit?: CircuitOptions;
  /** Called on every target state change (ejected, returned, unhealthy, healthy, added, removed). */
  onStateChange?: (event: TargetEvent) => void;
  /** The DNS lookup of `{ dns }` targets: a name to its addresses. Default `dns.promises.lookup` with `all: true`. */
  resolve?: (hostname: string) => Promise<readonly string[]>;
}

/** A target state change, for logs and metrics. */
export interface TargetEvent {
  /** The target's URL (an address of a DNS target: `http://10.0.0.7:8000`). */
  readonly url: string;
  /** What happened. */
  readonly change: 'added' | 'removed' | 'ejected' | 'returned' | 'unhealthy' | 'healthy';
  /** For `ejected`: how long, in ms. */
  readonly ejectedFor?: number;
}

/** The checked options of the outlier detection. */
export interface OutlierRules {
  readonly consecutiveFailures: number;
  readonly baseEjectionTime: number;
  readonly maxEjectionTime: number;
  readonly maxEjectionPercent: number;
  readonly statuses: ReadonlySet<number>;
  readonly errors: ReadonlySet<string>;
}

/** The checked options of the health checks. */
export interface HealthRules {
  readonly path: string;
  readonly interval: number;
  readonly timeout: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly statuses: ReadonlySet<number> | null;
  readonly protocol: HealthProtocol;
}

/** The checked options of the circuit breaker. */
export interface CircuitRules {
  readonly maxRequests: number;
  readonly maxPending: number;
  readonly retryAfter: string;
}

const optionKeys = ['targets', 'strategy', 'hashKey', 'healthCheck', 'outlier', 'circuit', 'onStateChange', 'resolve'];
const healthKeys = ['path', 'interval', 'timeout', 'healthyThreshold', 'unhealthyThreshold', 'statuses', 'protocol'];
const healthProtocols: readonly string[] = ['http1', 'http2'];
const outlierKeys = ['consecutiveFailures', 'baseEjectionTime', 'maxEjectionTime', 'maxEjectionPercent', 'statuses', 'errors'];
const circuitKeys = ['maxRequests', 'maxPending', 'retryAfter'];
const strategies: readonly string[] = ['round-robin', 'least-request', 'hash'];

const defaultOutlierErrors = [
  'ERR_UPSTREAM_UNREACHABLE',
  'ERR_UPSTREAM_RESET',
  'ERR_UPSTREAM_TLS',
  'ERR_UPSTREAM_PROTOCOL',
  'ERR_CONNECT_TIMEOUT',
  'ERR_READ_TIMEOUT',
];

/** Checks a plain options object and its keys. */
export function checkObject(value: unknown, known: readonly string[], where: string): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${where} must be an options object`);
  assertKnownKeys(value, known, where);
}

/** A whole number ≥ `min`, or the default. */
export function readInteger(value: unknown, option: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${option} must be a whole number ≥ ${min}, got ${String(value)}`);
  }
  return value;
}

/**
 * A whole number of ms ≥ 1 that a timer waits, or the default. Node fires a longer timer after
 * 1 ms: checks and lookups would run back to back, and every check would time out at once.
 */
export function readDelay(value: unknown, option: string, fallback: number): number {
  const delay = readInteger(value, option, fallback);
  assertTimerDelay(delay, option);
  return delay;
}

function readStatuses(value: unknown, option: string): number[] {
  if (!Array.isArray(value) || value.some((s) => !Number.isInteger(s) || s < 100 || s > 599)) {
    throw new RangeError(`${option} must be an array of HTTP statuses (100 to 599)`);
  }
  return value as number[];
}

/** The statuses a check passes with: at least one, or no check could ever pass and every target would go out. */
function readPassingStatuses(value: unknown, option: string): number[] {
  const statuses = readStatuses(value, option);
  if (statuses.length === 0) throw new RangeError(`${option} must list at least one status (no check could pass); leave it out for every 2xx and 3xx`);
  return statuses;
}

/**
 * What node refuses in a request path (its `INVALID_PATH_REGEX`: a space, a control character,
 * anything above U+00FF), and `#`, which would end the path: refused when the options are read, as
 * every check would otherwise throw when it is made.
 */
const unsendablePath = /[^\u0021-\u00ff]|#/;

function readHealthPath(value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/')) throw new TypeError('healthCheck.path must be a path starting with /');
  if (unsendablePath.test(value)) {
    throw new TypeError(`healthCheck.path must not contain spaces, control characters, '#' or characters above U+00FF (percent-encode them), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Checks `balance()`'s top-level options (the targets are checked by `parseSpecs`). */
export function checkBalanceOptions(options: unknown): asserts options is BalanceOptions {
  checkObject(options, optionKeys, 'balance');
  if (!Array.isArray(options.targets)) throw new TypeError('balance: targets must be an array of URLs, { url, weight } or { dns, interval }');
  if (options.strategy !== undefined && !strategies.includes(options.strategy as string)) {
    throw new TypeError(`balance: strategy must be one of ${strategies.join(', ')}, got ${String(options.strategy)}`);
  }
  for (const name of ['onStateChange', 'resolve'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') throw new TypeError(`balance: ${name} must be a function`);
  }
}

/** Checks `outlier`; `null` when it is off. */
export function compileOutlier(value: unknown): OutlierRules | null {
  if (value === false) return null;
  const options = value ?? {};
  checkObject(options, outlierKeys, 'balance: outlier');
  const baseEjectionTime = readInteger(options.baseEjectionTime, 'outlier.baseEjectionTime', 30_000);
  const maxEjectionPercent = readInteger(options.maxEjectionPercent, 'outlier.maxEjectionPercent', 50, 0);
  if (maxEjectionPercent > 100) throw new RangeError(`outlier.maxEjectionPercent must be 0 to 100, got ${maxEjectionPercent}`);
  const errors = checkErrorCodes(options.errors ?? defaultOutlierErrors);
  return {
    consecutiveFailures: readInteger(options.consecutiveFailures, 'outlier.consecutiveFailures', 5),
    baseEjectionTime,
    maxEjectionTime: readInteger(options.maxEjectionTime, 'outlier.maxEjectionTime', Math.max(300_000, baseEjectionTime)),
    maxEjectionPercent,
    statuses: new Set(options.statuses === undefined ? [502, 503, 504] : readStatuses(options.statuses, 'outlier.statuses')),
    errors: new Set(errors as string[]),
  };
}

/** Checks `healthCheck`; `null` when it is absent. */
export function compileHealth(value: unknown): HealthRules | null {
  if (value === undefined) return null;
  checkObject(value, healthKeys, 'balance: healthCheck');
  const path = readHealthPath(value.path);
  const protocol = value.protocol ?? 'http1';
  if (!healthProtocols.includes(protocol as string)) throw new TypeError(`healthCheck.protocol must be 'http1' or 'http2', got ${String(protocol)}`);
  return {
    path,
    interval: readDelay(value.interval, 'healthCheck.interval', 5_000),
    timeout: readDelay(value.timeout, 'healthCheck.timeout', 2_000),
    healthyThreshold: readInteger(value.healthyThreshold, 'healthCheck.healthyThreshold', 2),
    unhealthyThreshold: readInteger(value.unhealthyThreshold, 'healthCheck.unhealthyThreshold', 3),
    statuses: value.statuses === undefined ? null : new Set(readPassingStatuses(value.statuses, 'healthCheck.statuses')),
    protocol: protocol as HealthProtocol,
  };
}

/** Checks `circuit`; `null` when it is absent. */
export function compileCircuit(value: unknown): CircuitRules | null {
  if (value === undefined) return null;
  checkObject(value, circuitKeys, 'balance: circuit');
  if (value.maxRequests === undefined) throw new TypeError('circuit.maxRequests is required');
  return {
    maxRequests: readInteger(value.maxRequests, 'circuit.maxRequests', 0),
    maxPending: readInteger(value.maxPending, 'circuit.maxPending', 0, 0),
    retryAfter: String(readInteger(value.retryAfter, 'circuit.retryAfter', 1)),
  };
}

/** `outlier.errors`: RelayError codes only; a misspelled one would never match, so no target would ever be ejected for it. */
function checkErrorCodes(errors: unknown): readonly string[] {
  if (!Array.isArray(errors)) throw new TypeError("outlier.errors must be an array of RelayError codes such as 'ERR_UPSTREAM_UNREACHABLE'");
  for (const code of errors) {
    if (typeof code === 'string' && Object.hasOwn(errorStatus, code)) continue;
    const nearest = typeof code === 'string' ? nearestName(code, Object.keys(errorStatus)) : null;
    throw new RangeError(`outlier.errors: ${String(code)} is not a RelayError code${nearest === null ? '' : ` (did you mean ${nearest}?)`}`);
  }
  return errors as string[];
}
