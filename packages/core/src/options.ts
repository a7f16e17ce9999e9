import { assertKnownKeys } from './known-keys.js';
import { normalizePathOption } from './request/path.js';
import type { Target, Timeouts, TlsOptions } from './types.js';
import { withoutUserinfo } from './logger.js';

/** Timeout defaults in milliseconds. */
export const defaultTimeouts: Readonly<Timeouts> = Object.freeze({ connect: 5_000, read: 30_000, write: 30_000, pool: 10_000 });

/**
 * Checks that a number option is finite and not negative; throws a TypeError or RangeError
 * naming the option.
 */
export function assertNonNegative(value: unknown, option: string): asserts value is number {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${option} must be a number, got ${typeof value}`);
  if (value < 0 || !Number.isFinite(value)) throw new RangeError(`${option} must be a finite number >= 0, got ${value}`);
}

/** The longest delay node's timers take: anything longer fires after 1 ms (with a TimeoutOverflowWarning). */
export const maxTimerDelay = 2 ** 31 - 1;

/**
 * A timeout in milliseconds: `assertNonNegative`, and no longer than node's timers reach (about
 * 24.8 days), where a longer one would fire at once and fail every request.
 */
export function assertTimeout(value: unknown, option: string): asserts value is number {
  assertNonNegative(value, option);
  assertTimerDelay(value, option, '; 0 turns it off');
}

/**
 * A delay a timer will wait: no longer than node's timers reach (about 24.8 days), where a longer
 * one fires after 1 ms. For options checked otherwise already (a number, its lower bound).
 *
 * @example
 * assertTimerDelay(30 * 86_400_000, 'healthCheck.interval'); // RangeError naming the option
 */
export function assertTimerDelay(value: number, option: string, note = ''): void {
  if (value > maxTimerDelay) throw new RangeError(`${option} must be at most ${maxTimerDelay} ms (about 24.8 days, node's timer limit${note}), got ${value}`);
}

const timeoutPhases: readonly string[] = Object.keys(defaultTimeouts);

/**
 * Reads the `timeout` option: one number for every phase, or `{ connect, read, write, pool }`
 * with defaults for the phases left out. 0 disables a phase. An unknown phase throws, naming the
 * nearest one (`timeout: { conect }` → did you mean "connect"?).
 */
export function resolveTimeouts(value: unknown, option = 'timeout'): Timeouts {
  if (value === undefined) return { ...defaultTimeouts };
  if (typeof value === 'number') {
    assertTimeout(value, option);
    return { connect: value, read: value, write: value, pool: value };
  }
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`${option} must be a number of milliseconds or { connect, read, write, pool }`);
  }
  const phases = value as Record<string, unknown>;
  assertKnownKeys(phases, timeoutPhases, option);
  const timeouts = { ...defaultTimeouts };
  for (const key of Object.keys(defaultTimeouts) as Array<keyof Timeouts>) {
    const phase = phases[key];
    if (phase === undefined) continue;
    assertTimeout(phase, `${option}.${key}`);
    timeouts[key] = phase;
  }
  return timeouts;
}

/**
 * Parses `targetBaseUrl` and `upstreamPrefix` into a `Target`, once, when the relay is built.
 * Throws a TypeError naming the option for anything but an absolute http(s) URL without
 * credentials, query or fragment.
 *
 * @example
 * resolveTarget('http://auth:8000/v1', '/api'); // { protocol: 'http:', host: 'auth:8000', port: 8000, basePath: '/v1/api', … }
 */
export function resolveTarget(targetBaseUrl: unknown, upstreamPrefix: unknown): Target {
  if (typeof targetBaseUrl !== 'string' && !(targetBaseUrl instanceof URL)) {
    throw new TypeError(`targetBaseUrl must be an absolute http:// or https:// URL string, got ${typeof targetBaseUrl}`);
  }
  if (typeof targetBaseUrl === 'string' && targetBaseUrl.startsWith('unix:')) return unixTarget(targetBaseUrl, upstreamPrefix);
  let url: URL;
  try {
    url = new URL(String(targetBaseUrl));
  } catch {
    // Its password stays out of the message: startup errors end up in crash logs.
    throw new TypeError(`targetBaseUrl must be an absolute http:// or https:// URL, got "${withoutUserinfo(String(targetBaseUrl))}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`targetBaseUrl must use http: or https: (WebSocket relays derive ws:/wss: from it), got "${url.protocol}"`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new TypeError('targetBaseUrl must not contain credentials; set an Authorization header with a header stage');
  }
  if (url.search !== '' || url.hash !== '') {
    throw new TypeError('targetBaseUrl must not contain a query or fragment');
  }
  const targetPath = normalizePathOption(url.pathname, 'targetBaseUrl path');
  const prefix = normalizePathOption(upstreamPrefix ?? '/', 'upstreamPrefix');
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  return Object.freeze({
    protocol: url.protocol,
    hostname,
    port,
    host: url.host,
    origin: url.origin,
    basePath: targetPath + prefix,
  });
}

/**
 * A `unix:` target, as got and curl name them: `unix:/run/app.sock`, or `unix:/run/app.sock:/base`
 * with a base path. Plain HTTP over the socket, `Host: localhost`.
 */
function unixTarget(value: string, upstreamPrefix: unknown): Target {
  const rest = value.slice('unix:'.length);
  const split = rest.indexOf(':/');
  const socketPath = split === -1 ? rest : rest.slice(0, split);
  if (!socketPath.startsWith('/')) throw new TypeError(`a unix: target needs an absolute socket path, as unix:/run/app.sock, got "${value}"`);
  const targetPath = normalizePathOption(split === -1 ? '/' : rest.slice(split + 1), 'targetBaseUrl path');
  const prefix = normalizePathOption(upstreamPrefix ?? '/', 'upstreamPrefix');
  return Object.freeze({ protocol: 'http:', hostname: 'localhost', port: 80, host: 'localhost', origin: `unix:${socketPath}`, basePath: targetPath + prefix, socketPath });
}

/**
 * Parses an upstream URL into a `Target` for `request.target`, once, when a stage is built
 * (`http(s)://host:port/base` or `unix:/path.sock`).
 *
 * @example
 * const targets = ['http://10.0.0.1:8000', 'http://10.0.0.2:8000'].map((url) => parseTarget(url));
 */
export function parseTarget(url: string | URL): Target {
  return resolveTarget(url, '/');
}

const tlsOptionNames: readonly string[] = ['ca', 'rejectUnauthorized', 'servername', 'cert', 'key', 'pfx', 'passphrase'];

/** Checks the `tls` option; unknown keys throw, naming the nearest valid one. */
export function resolveTls(value: unknown): TlsOptions {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object') throw new TypeError('tls must be an object: { ca, rejectUnauthorized, servername, cert, key, pfx, passphrase }');
  assertKnownKeys(value, tlsOptionNames, 'tls');
  const tls = value as TlsOptions;
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean') {
    throw new TypeError('tls.rejectUnauthorized must be a boolean');
  }
  if (tls.servername !== undefined && (typeof tls.servername !== 'string' || tls.servername === '')) {
    throw new TypeError('tls.servername must be a non-empty string');
  }
  if (tls.passphrase !== undefined && typeof tls.passphrase !== 'string') throw new TypeError('tls.passphrase must be a string');
  for (const name of pemOptionNames) assertPem(tls[name], name);
  return { ...tls };
}

const pemOptionNames = ['ca', 'cert', 'key', 'pfx'] as const;

/** What node:tls takes for these: a string, a Buffer, or a list of them. Checked now, not at the first request. */
function assertPem(value: unknown, name: string): void {
  if (value === undefined) return;
  const ok = (one: unknown) => typeof one === 'string' || Buffer.isBuffer(one);
  if (ok(value) || (Array.isArray(value) && value.every(ok))) return;
  throw new TypeError(`tls.${name} must be a string, a Buffer or an array of them`);
}
