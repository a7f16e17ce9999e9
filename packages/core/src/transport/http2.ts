import { RelayError } from '../errors.js';
import { assertKnownKeys } from '../known-keys.js';
import { logUpstreamFailure } from '../logger.js';
import { assertNonNegative, assertTimeout } from '../options.js';
import type { BoundTransport, ProxyRequest, ProxyResponse, Target, Transport, TransportConfig } from '../types.js';
import { notSendable } from './agent.js';
import { resolveClientLimits, type ClientLimitOptions, type ClientLimits } from './attempt-rules.js';
import { httpTransport } from './http.js';
import { Http2Attempt, type Http2AttemptHost } from './http2-attempt.js';
import { SessionPool, type PoolHooks, type SessionLimits } from './http2-session.js';

/** Options of the HTTP/2 transport. */
export interface Http2TransportOptions extends Pick<ClientLimitOptions, 'slowClientTimeout' | 'eventStreams'> {
  /**
   * What to do when an `https:` upstream does not offer `h2` in ALPN: `'http1'` sends its requests
   * over HTTP/1.1 (an `httpTransport` with default options), `'refuse'` fails them with 502
   * `ERR_UPSTREAM_PROTOCOL`. Default `'http1'`. An `http:` target always speaks h2c (prior knowledge).
   */
  fallback?: 'http1' | 'refuse';
  /** Most sessions open to the upstream at once; a new one opens only when the others are full. Default 1. */
  maxSessions?: number;
  /**
   * Most streams the relay opens on one session; the upstream's own `SETTINGS_MAX_CONCURRENT_STREAMS`
   * applies when lower. More requests wait up to `timeout.pool`. Default: the upstream's setting.
   */
  maxConcurrentStreams?: number;
  /**
   * A PING every this many ms checks a session; one unanswered within `timeout.read` closes it. 0 = none (the
   * default, as Envoy and nginx): gRPC servers in Go and C++ allow one PING per 5 minutes by default and answer
   * more with GOAWAY `ENHANCE_YOUR_CALM`, cutting the calls on the session. At least 300 000 for those.
   */
  pingInterval?: number;
  /**
   * A session that carries no stream for this many ms is closed (gracefully: nothing in flight is
   * cut) and its target forgotten; the next request opens a new one. PINGs are not activity.
   * 0 = never. Default 300 000 (5 min): long enough that a gRPC client's quiet spells do not
   * pay a reconnect (HTTP/1's 30 s would), short enough that the sessions of targets gone from a
   * balance pool or DNS do not pile up; Envoy's upstream default is 1 h.
   */
  idleTimeout?: number;
}

const http2TransportOptionNames: readonly string[] = ['fallback', 'maxSessions', 'maxConcurrentStreams', 'pingInterval', 'idleTimeout', 'slowClientTimeout', 'eventStreams'];

/** The `idleTimeout` default, in ms: see `Http2TransportOptions.idleTimeout`. */
const defaultIdleTimeout = 300_000;

/**
 * A transport speaking HTTP/2 to the upstream with node:http2: h2c (prior knowledge) for `http:`
 * targets, TLS with ALPN `h2` for `https:` ones (with the relay's `tls` settings), falling back to
 * HTTP/1.1 or refusing when the upstream does not offer h2. One session per target carries every
 * request (up to `maxSessions` when the upstream's `maxConcurrentStreams` is reached); requests
 * beyond the streams allowed wait up to `timeout.pool`. Streams the upstream did not process
 * (REFUSED_STREAM, above a GOAWAY's last stream id) are sent again on a new session when their
 * body has not started. Connect, read, write and pool timeouts, client aborts (RST_STREAM
 * CANCEL) and error codes are those of `httpTransport`. Sessions open on the first request and
 * close after `idleTimeout` without a stream, or in `relay.shutdown()`.
 *
 * @example
 * createRelay({ targetBaseUrl: 'http://grpc-backend:50051', transport: http2Transport({ maxSessions: 2 }) });
 */
export function http2Transport(options: Http2TransportOptions = {}): Transport {
  if (options === null || typeof options !== 'object') throw new TypeError('http2Transport(options) needs an options object');
  assertKnownKeys(options, http2TransportOptionNames, 'http2Transport');
  const fallback = options.fallback ?? 'http1';
  if (fallback !== 'http1' && fallback !== 'refuse') throw new TypeError(`fallback must be 'http1' or 'refuse', got ${String(fallback)}`);
  const sessions = resolveSessionLimits(options);
  const limits = resolveClientLimits({ slowClientTimeout: options.slowClientTimeout, eventStreams: options.eventStreams });
  const http1 = fallback === 'http1' ? httpTransport({ slowClientTimeout: options.slowClientTimeout, eventStreams: options.eventStreams }) : null;
  return {
    kind: 'http',
    name: 'http2',
    bind(config: TransportConfig): BoundTransport {
      return new Http2Binding(config, sessions, limits, http1?.bind(config) ?? null);
    },
  };
}

function resolveSessionLimits(options: Http2TransportOptions): SessionLimits {
  const limits = {
    maxSessions: options.maxSessions ?? 1,
    maxConcurrentStreams: options.maxConcurrentStreams ?? Infinity,
    pingInterval: options.pingInterval ?? 0,
    idleTimeout: options.idleTimeout ?? defaultIdleTimeout,
  };
  assertNonNegative(limits.maxSessions, 'maxSessions');
  if (!Number.isInteger(limits.maxSessions) || limits.maxSessions < 1) throw new RangeError(`maxSessions must be an integer of at least 1, got ${limits.maxSessions}`);
  if (limits.maxConcurrentStreams !== Infinity) assertNonNegative(limits.maxConcurrentStreams, 'maxConcurrentStreams');
  // A fraction would read as the next whole number (`active < 1.5` lets two streams open).
  if (limits.maxConcurrentStreams !== Infinity && (!Number.isInteger(limits.maxConcurrentStreams) || limits.maxConcurrentStreams < 1)) {
    throw new RangeError(`maxConcurrentStreams must be an integer of at least 1, got ${limits.maxConcurrentStreams}`);
  }
  assertTimeout(limits.pingInterval, 'pingInterval');
  assertTimeout(limits.idleTimeout, 'idleTimeout');
  return limits;
}

class Http2Binding implements BoundTransport, Http2AttemptHost, PoolHooks {
  readonly handle: (request: ProxyRequest) => Promise<ProxyResponse>;
  readonly logsFailures = true;
  /** The sessions to the relay's target; `null` while the transport is not started. */
  private main: SessionPool | null = null;
  /**
   * The sessions to each other target a stage chose (`request.target`), keyed by origin or socket
   * path. A pool leaves when its last session closed (`idleTimeout`, the upstream's GOAWAY) with
   * nothing waiting (`onEmpty`): targets that come and go (DNS, a balance pool) do not pile up.
   */
  private readonly others = new Map<string, SessionPool>();
  /** Pools revived by a resend while a newer one had their target: closed at shutdown too. */
  private readonly strays = new Set<SessionPool>();

  constructor(
    readonly config: TransportConfig,
    private readonly sessionLimits: Readonly<SessionLimits>,
    readonly limits: Readonly<ClientLimits>,
    private readonly http1: BoundTransport | null,
  ) {
    this.handle = (request) => this.forward(request);
  }

  startup(): void {
    if (this.main !== null) return;
    this.main = new SessionPool(this.config, this.config.target, this.sessionLimits);
    void this.http1?.startup();
  }

  shutdown(): void {
    this.main?.close();
    this.main = null;
    for (const pool of [...this.others.values(), ...this.strays]) pool.close();
    this.others.clear();
    this.strays.clear();
    void this.http1?.shutdown();
  }

  forward(request: ProxyRequest): Promise<ProxyResponse> {
    const refused = notSendable(this.main !== null, request);
    if (refused !== null) return Promise.reject(refused);
    const pool = this.poolFor(request.target);
    // The upstream answered ALPN without h2: HTTP/1.1 (or a refusal) from now on.
    if (pool.http1Only) return this.viaHttp1(request);
    return new Promise<ProxyResponse>((resolve, reject) => {
      new Http2Attempt(this, pool, request, resolve, reject).start();
    });
  }

  /** The sessions of `target`, opened on its first request like the relay target's. */
  private poolFor(target: Target | undefined): SessionPool {
    if (target === undefined || target === this.config.target) return this.main!;
    const key = poolKey(target);
    let pool = this.others.get(key);
    if (pool === undefined) {
      pool = new SessionPool(this.config, target, this.sessionLimits, this);
      this.others.set(key, pool);
    }
    return pool;
  }

  /** Tests and diagnostics: how many other targets have sessions (or requests waiting for one). */
  get otherTargets(): number {
    return this.others.size;
  }

  onEmpty(pool: SessionPool): void {
    this.strays.delete(pool);
    const key = poolKey(pool.target);
    if (this.others.get(key) === pool) this.others.delete(key);
  }

  onRevived(pool: SessionPool): void {
    // Only an attempt already holding the pool gets here (a resend after its last session went).
    if (this.main === null) {
      pool.close();
      return;
    }
    const key = poolKey(pool.target);
    if (!this.others.has(key)) this.others.set(key, pool);
    else this.strays.add(pool); // a newer pool serves the target: this one only until it empties again
  }

  viaHttp1(request: ProxyRequest): Promise<ProxyResponse> {
    if (this.http1 !== null) return this.http1.handle(request);
    const error = new RelayError('ERR_UPSTREAM_PROTOCOL', 'upstream does not offer HTTP/2 (ALPN) and http2Transport({ fallback: "refuse" })');
    logUpstreamFailure(this.config, request, error);
    return Promise.reject(error);
  }
}

function poolKey(target: Target): string {
  return target.socketPath ?? target.origin;
}
