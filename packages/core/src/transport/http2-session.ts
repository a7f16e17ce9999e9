// The HTTP/2 sessions of one bound transport: opened on demand (h2c with prior knowledge, or TLS
// with ALPN), shared by every request, `maxConcurrentStreams` respected with a queue in front,
// GOAWAY and PING handled. Sessions are few and long-lived: plain closures here, not the hot path.
import { connect as http2Connect, type ClientHttp2Session, type SecureClientSessionOptions } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { RelayError } from '../errors.js';
import type { Target, TransportConfig } from '../types.js';
import { timeoutError } from './attempt-rules.js';
import { http2Failure } from './http2-wire.js';

/** Someone who needs a stream: an attempt, waiting in the pool's queue until a session has room. */
export interface StreamWaiter {
  /** A session has a stream slot for this waiter (already counted: give it back with `release`). */
  onSession(pooled: PooledSession): void;
  /** Every session is connected and full: the wait for a slot (the pool timeout) starts. */
  onQueued(): void;
  /** No session could be had: the connect failed or timed out, or the transport shut down. */
  onNoSession(error: RelayError): void;
  /** The `https:` upstream does not offer HTTP/2: the request goes another way. */
  onHttp1(): void;
}

/** The limits of a session pool. */
export interface SessionLimits {
  maxSessions: number;
  /** The most streams the relay opens on one session, below the upstream's own SETTINGS. */
  maxConcurrentStreams: number;
  /** How often an idle session is PINGed, in ms; 0 = never. */
  pingInterval: number;
  /** How long a session may carry no stream before it is closed, in ms; 0 = never. */
  idleTimeout: number;
}

/** What a pool tells its owner about its life, for the per-target pools a binding keeps in a map. */
export interface PoolHooks {
  /** The pool has no session, no stream and no waiter left: it may be forgotten. */
  onEmpty(pool: SessionPool): void;
  /** A forgotten pool got a request after all (a stale reference): it is known again, or closed. */
  onRevived(pool: SessionPool): void;
}

/** One session and what the pool knows about it. */
export class PooledSession {
  session: ClientHttp2Session | null = null;
  /** Streams open on it, counted by the pool. */
  active = 0;
  /** Its first SETTINGS came: it can carry streams. */
  ready = false;
  /** A GOAWAY came (or it is closing): no new streams. */
  draining = false;
  /** Streams above this id were not processed by the upstream (from its GOAWAY). */
  lastStreamId = Infinity;
  /** Streams it carried, for the stale-session rule. */
  served = 0;
  connectTimer: NodeJS.Timeout | null = null;
  pingTimer: NodeJS.Timeout | null = null;
  /**
   * Closes the session after `idleTimeout` without a stream. Made once when the session is ready and
   * `refresh()`ed each time its last stream ends; not cleared when a stream starts (that would
   * need a new timer on every idle period): it checks `active` when it fires instead.
   */
  idleTimer: NodeJS.Timeout | null = null;
  error: Error | null = null;

  /** The number of streams it may carry now. */
  capacity(own: number): number {
    const peer = this.session?.remoteSettings.maxConcurrentStreams ?? 0;
    return Math.min(peer, own);
  }

  /** Tears the session (or its TLS socket before the session exists) down. */
  destroy(error?: Error): void {
    this.draining = true;
    if (this.session !== null && !this.session.destroyed) this.session.destroy(error);
  }
}

export class SessionPool {
  private readonly sessions: PooledSession[] = [];
  private readonly waiting: StreamWaiter[] = [];
  private closed = false;
  /** Set once the upstream said (by ALPN) that it speaks HTTP/1.1 only. */
  private http1 = false;
  /** Set while no new session is opened after one failed to open (`backOff`). */
  private reopenTimer: NodeJS.Timeout | null = null;
  /** Opens that failed in a row while other sessions served: how long the next back-off is. */
  private failedOpens = 0;
  /** Streams open on every session, those already taken out of the pool included. */
  private streams = 0;
  /** An `onEmpty` check is queued. */
  private emptyCheck = false;
  /** `onEmpty` was told: the owner may have forgotten this pool. */
  private forgotten = false;

  constructor(
    private readonly config: TransportConfig,
    /** The upstream these sessions go to: the relay's target, or one a stage chose (`request.target`). */
    readonly target: Target,
    private readonly limits: Readonly<SessionLimits>,
    /** For a pool its owner drops when empty; `null` for one kept for the binding's life. */
    private readonly hooks: PoolHooks | null = null,
  ) {}

  /** The upstream answered ALPN without `h2`: its requests go over HTTP/1.1 (or are refused) from now on. */
  get http1Only(): boolean {
    return this.http1;
  }

  /** Gives `waiter` a stream slot now, or queues it until a session has one. */
  acquire(waiter: StreamWaiter): void {
    if (this.forgotten) this.revive();
    if (this.closed) {
      waiter.onNoSession(new RelayError('ERR_NOT_STARTED', 'transport is shut down'));
      return;
    }
    if (this.http1) {
      waiter.onHttp1();
      return;
    }
    if (this.waiting.length === 0) {
      const pooled = this.free();
      if (pooled !== null) {
        this.take(pooled);
        waiter.onSession(pooled);
        return;
      }
    }
    this.waiting.push(waiter);
    this.dispatch();
  }

  /** A stream of `pooled` closed: its slot goes to the next waiter. */
  release(pooled: PooledSession): void {
    pooled.active--;
    this.streams--;
    if (pooled.active === 0) this.onIdle(pooled);
    if (this.waiting.length > 0) this.dispatch();
    else if (this.streams === 0) this.checkEmpty();
  }

  /** `waiter` stopped waiting (its client left, or its pool timeout ran out). */
  forget(waiter: StreamWaiter): void {
    const index = this.waiting.indexOf(waiter);
    if (index !== -1) this.waiting.splice(index, 1);
    // Also for one that never waited: a pool made for a request that failed before asking stays not.
    this.checkEmpty();
  }

  /** Sessions open or opening, for tests and diagnostics. */
  get size(): number {
    return this.sessions.length;
  }

  close(): void {
    this.closed = true;
    this.clearReopenTimer();
    for (const pooled of this.sessions.splice(0)) {
      this.clearTimers(pooled);
      pooled.destroy();
    }
    this.failWaiting(new RelayError('ERR_NOT_STARTED', 'transport is shut down'));
  }

  private take(pooled: PooledSession): void {
    if (pooled.active === 0) pooled.session!.ref();
    pooled.active++;
    pooled.served++;
    this.streams++;
  }

  /** The last stream of `pooled` ended: the process may exit without it, and its idle time starts. */
  private onIdle(pooled: PooledSession): void {
    pooled.session?.unref();
    if (!pooled.draining) pooled.idleTimer?.refresh();
  }

  /** A session is ready: its idle timer is made once, and runs while no stream is open. */
  private startIdleTimer(pooled: PooledSession): void {
    const idleMs = this.limits.idleTimeout;
    if (idleMs === 0) return;
    pooled.idleTimer = setTimeout(() => this.onIdleTimeout(pooled), idleMs);
    pooled.idleTimer.unref();
  }

  /**
   * No stream for `idleTimeout`: the session leaves the pool and closes gracefully (GOAWAY, its
   * socket ends), so an upstream that left the balance pool or the DNS answer is let go of. The
   * next request to its target opens a new session.
   */
  private onIdleTimeout(pooled: PooledSession): void {
    if (pooled.active > 0 || !this.remove(pooled)) return;
    pooled.session?.close();
    this.checkEmpty();
  }

  /**
   * Tells the owner once the pool holds nothing: no session, no stream (those of a session
   * already taken out included), no waiter. Checked after the current callbacks, as an attempt
   * whose stream closed asks for a new one right after giving its slot back.
   */
  private checkEmpty(): void {
    if (this.hooks === null || this.emptyCheck || this.forgotten || !this.isEmpty()) return;
    this.emptyCheck = true;
    queueMicrotask(() => {
      this.emptyCheck = false;
      if (this.forgotten || !this.isEmpty()) return;
      this.forgotten = true;
      this.hooks!.onEmpty(this);
    });
  }

  private isEmpty(): boolean {
    // A pool that speaks HTTP/1.1 only stays: forgetting it would cost a TLS handshake per request to learn it again.
    return this.sessions.length === 0 && this.waiting.length === 0 && this.streams === 0 && !this.http1 && !this.closed;
  }

  /** A request came to a forgotten pool (an attempt holding it resends): its owner knows it again. */
  private revive(): void {
    this.forgotten = false;
    this.hooks!.onRevived(this);
  }

  private free(): PooledSession | null {
    const own = this.limits.maxConcurrentStreams;
    for (const pooled of this.sessions) {
      if (serving(pooled) && pooled.active < pooled.capacity(own)) return pooled;
    }
    return null;
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const pooled = this.free();
      if (pooled === null) break;
      this.take(pooled);
      this.waiting.shift()!.onSession(pooled);
    }
    if (this.waiting.length === 0 || this.closed) return;
    let open = 0;
    for (const pooled of this.sessions) {
      if (!pooled.ready) return; // a session is connecting: the waiters wait for it (connect phase)
      if (serving(pooled)) open++;
    }
    // The back-off after a failed open holds while another session serves; with none left, the
    // next open is like the first (its failure fails the waiters: no loop).
    if (open < this.limits.maxSessions && (this.reopenTimer === null || open === 0)) {
      this.open();
      return;
    }
    // Every session is full (or the next may not open yet): the waiters' pool timeout runs.
    for (const waiter of this.waiting) waiter.onQueued();
  }

  private open(): void {
    const pooled = new PooledSession();
    this.sessions.push(pooled);
    const connectMs = this.config.timeouts.connect;
    if (connectMs > 0) {
      pooled.connectTimer = setTimeout(() => this.onConnectTimeout(pooled), connectMs);
    }
    const target = this.target;
    if (target.protocol === 'https:') this.openTls(pooled);
    else this.attach(pooled, http2Connect(target.origin, target.socketPath === undefined ? sessionOptions : { ...sessionOptions, createConnection: () => netConnect(target.socketPath!) }));
  }

  /** TLS first, with ALPN: the session is made only when the upstream chose `h2`. */
  private openTls(pooled: PooledSession): void {
    const target = this.target;
    const where = target.socketPath === undefined ? { host: target.hostname, port: target.port } : { path: target.socketPath, servername: 'localhost' };
    const options: ConnectionOptions = { ...this.config.tls, ...where, ALPNProtocols: ['h2', 'http/1.1'] };
    const socket: TLSSocket = tlsConnect(options);
    const onEarlyError = (error: Error) => this.onOpenFailed(pooled, error);
    socket.once('error', onEarlyError);
    pooled.destroy = (error?: Error) => {
      pooled.draining = true;
      if (pooled.session === null) socket.destroy(error);
      else if (!pooled.session.destroyed) pooled.session.destroy(error);
    };
    socket.once('secureConnect', () => {
      socket.removeListener('error', onEarlyError);
      if (socket.alpnProtocol === 'h2') {
        const options: SecureClientSessionOptions = { ...sessionOptions, createConnection: () => socket };
        this.attach(pooled, http2Connect(target.origin, options));
        return;
      }
      socket.destroy();
      this.onNotHttp2(pooled);
    });
  }

  private attach(pooled: PooledSession, session: ClientHttp2Session): void {
    pooled.session = session;
    if (pooled.draining) {
      session.destroy();
      return;
    }
    session.once('remoteSettings', () => this.onReady(pooled));
    session.on('remoteSettings', () => this.dispatch());
    session.on('goaway', (_code: number, lastStreamId: number) => {
      pooled.draining = true;
      pooled.lastStreamId = lastStreamId;
      this.dispatch();
    });
    session.on('error', (error: Error) => {
      pooled.error ??= error;
    });
    session.on('close', () => this.onSessionClose(pooled));
  }

  private onReady(pooled: PooledSession): void {
    pooled.ready = true;
    this.failedOpens = 0;
    this.clearReopenTimer();
    this.clearConnectTimer(pooled);
    this.startPings(pooled);
    this.startIdleTimer(pooled);
    this.dispatch();
  }

  private onConnectTimeout(pooled: PooledSession): void {
    pooled.connectTimer = null;
    const error = timeoutError('connect', this.config.timeouts);
    pooled.error ??= error;
    pooled.destroy(error);
    this.onOpenFailed(pooled, error);
  }

  private onSessionClose(pooled: PooledSession): void {
    if (!pooled.ready) {
      this.onOpenFailed(pooled, pooled.error ?? new RelayError('ERR_UPSTREAM_RESET', 'upstream closed the HTTP/2 session before its SETTINGS'));
      return;
    }
    this.remove(pooled);
    this.dispatch();
    this.checkEmpty();
  }

  /** A session never became ready: the requests waiting for it fail, unless another session can take them. */
  private onOpenFailed(pooled: PooledSession, error: Error): void {
    if (!this.remove(pooled)) return;
    pooled.destroy();
    if (this.sessions.some(serving)) {
      this.backOff();
      this.dispatch();
      return;
    }
    this.failWaiting(http2Failure(error));
  }

  /**
   * A new session failed to open while others serve (the upstream at its connection limit,
   * restarting): opening again at once would reconnect in a loop for as long as the waiters wait.
   * No session opens for a while (doubling per failure in a row, at most `maxReopenDelay`); the
   * waiters take the slots the open sessions free meanwhile, or their pool timeout answers them.
   */
  private backOff(): void {
    this.clearReopenTimer();
    const wait = Math.min(firstReopenDelay * 2 ** this.failedOpens, maxReopenDelay);
    this.failedOpens++;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = null;
      this.dispatch();
    }, wait);
    this.reopenTimer.unref();
  }

  private clearReopenTimer(): void {
    if (this.reopenTimer !== null) clearTimeout(this.reopenTimer);
    this.reopenTimer = null;
  }

  private onNotHttp2(pooled: PooledSession): void {
    this.remove(pooled);
    this.http1 = true;
    for (const waiter of this.waiting.splice(0)) waiter.onHttp1();
  }

  /** Takes `pooled` out of the pool; false when it was out already. */
  private remove(pooled: PooledSession): boolean {
    this.clearTimers(pooled);
    const index = this.sessions.indexOf(pooled);
    if (index === -1) return false;
    this.sessions.splice(index, 1);
    pooled.draining = true;
    return true;
  }

  private failWaiting(error: RelayError): void {
    for (const waiter of this.waiting.splice(0)) waiter.onNoSession(error);
    this.checkEmpty();
  }

  /**
   * PING keep-alive: a session whose PING is not answered within `timeout.read` is dead (a
   * silently dropped connection, a hung upstream) and is destroyed, so requests go to a new one.
   */
  private startPings(pooled: PooledSession): void {
    const every = this.limits.pingInterval;
    if (every === 0) return;
    const answerWithin = this.config.timeouts.read;
    let waiting = false;
    pooled.pingTimer = setInterval(() => {
      const session = pooled.session;
      if (waiting || session === null || session.destroyed) return;
      waiting = true;
      const deadline = answerWithin > 0 ? setTimeout(() => pooled.destroy(new RelayError('ERR_UPSTREAM_RESET', `upstream did not answer a PING within ${answerWithin} ms`)), answerWithin) : null;
      deadline?.unref();
      session.ping(() => {
        waiting = false;
        if (deadline !== null) clearTimeout(deadline);
      });
    }, every);
    pooled.pingTimer.unref();
  }

  private clearConnectTimer(pooled: PooledSession): void {
    if (pooled.connectTimer !== null) clearTimeout(pooled.connectTimer);
    pooled.connectTimer = null;
  }

  private clearTimers(pooled: PooledSession): void {
    this.clearConnectTimer(pooled);
    if (pooled.pingTimer !== null) clearInterval(pooled.pingTimer);
    pooled.pingTimer = null;
    if (pooled.idleTimer !== null) clearTimeout(pooled.idleTimer);
    pooled.idleTimer = null;
  }
}

/** The first and the longest wait before a session opens again after one failed to (`backOff`), in ms. */
const firstReopenDelay = 100;
const maxReopenDelay = 2000;

/**
 * Whether a session can take new streams: ready, no GOAWAY, and neither destroyed nor closing.
 * node destroys a session on a socket error and emits its `close` (which takes it out of the
 * pool) only later; a request on it in between would throw.
 */
function serving(pooled: PooledSession): boolean {
  const session = pooled.session;
  return pooled.ready && !pooled.draining && session !== null && !session.destroyed && !session.closed;
}

/** Server push is refused: a proxy has no use for it. */
const sessionOptions = { settings: { enablePush: false } };
