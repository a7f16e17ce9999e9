import { Readable } from 'node:stream';
import { Pool } from 'undici';
import { RelayError, toRelayError } from '../errors.js';
import { assertKnownKeys } from '../known-keys.js';
import { assertTimeout } from '../options.js';
import { copyHeaders, responseHeadersFromRaw, trailerFieldsFromRaw } from '../request/hop-by-hop.js';
import type { AbortHandler } from '../request/client.js';
import type { BoundTransport, HeaderRecord, ProxyRequest, ProxyResponse, Target, Transport, TransportConfig } from '../types.js';
import { notSendable } from './agent.js';
import { bodyFailure } from './attempt.js';
import { clientLimitNames, headersForTarget, isEventStream, isStaleConnectionFailure, logAttemptFailure, logClientFault, resolveClientLimits, slowReaderError, switchedProtocols, timeoutError, unusableHead, uploadStallError, type ClientLimitOptions, type ClientLimits } from './attempt-rules.js';

/** Options of the undici transport. */
export interface UndiciTransportOptions extends Pick<ClientLimitOptions, 'slowClientTimeout' | 'eventStreams'> {
  /** Most connections open to one upstream origin at once (`Infinity`: no limit); more requests queue up to `timeout.pool`. Default 256. */
  maxSockets?: number;
  /** Close an idle keep-alive connection after this many ms (sooner if the upstream's `Keep-Alive` says so). Default 30 000. */
  idleTimeout?: number;
  /** Requests in flight on one connection (HTTP/1.1 pipelining); 1 turns it off. Default 1. */
  pipelining?: number;
}

const optionNames: readonly string[] = ['maxSockets', 'idleTimeout', 'pipelining', ...clientLimitNames.filter((name) => name !== 'minUploadRate')];

interface UndiciSettings {
  /** undici's `connections`: null is no limit. */
  readonly connections: number | null;
  readonly idleTimeout: number;
  readonly pipelining: number;
  readonly limits: Readonly<ClientLimits>;
}

/**
 * A transport on undici's `Pool` (undici 7, the client of Node's `fetch` and of
 * `@fastify/reply-from`): one keep-alive pool per upstream origin (or `unix:` socket), made in
 * `relay.startup()` and destroyed in `relay.shutdown()`. It costs 0.83–0.93 times the CPU per
 * small GET of `httpTransport`, about 0.85 times on 64 KiB bodies (benchmarks/RESULTS.md). Bodies stream both ways with backpressure; response trailers
 * and 103 Early Hints are relayed; the path and query are sent byte for byte.
 *
 * Timeouts: `connect` is undici's connect timeout (TLS handshake included), `read` its headers
 * and body timeouts, `write` the longest stall of the request body, `pool` the wait for a
 * connection when every one is busy. What it does not do, where `httpTransport` does: request
 * trailers (dropped), `Expect: 100-continue` end to end (the relay answers `100` itself),
 * `minUploadRate`, and the egress `proxy` option.
 *
 * @example
 * import { undiciTransport } from '@relay/core/undici';
 * createRelay({ targetBaseUrl: 'http://api:8000', transport: undiciTransport({ maxSockets: 128 }) });
 */
export function undiciTransport(options: UndiciTransportOptions = {}): Transport {
  if (options === null || typeof options !== 'object') throw new TypeError('undiciTransport(options) needs an options object');
  assertKnownKeys(options, optionNames, 'undiciTransport');
  const settings = resolveSettings(options);
  return {
    kind: 'http',
    name: 'undici',
    bind(config: TransportConfig): BoundTransport {
      return new UndiciBinding(config, settings);
    },
  };
}

function resolveSettings(options: UndiciTransportOptions): UndiciSettings {
  const maxSockets = options.maxSockets ?? 256;
  if (maxSockets !== Infinity && (!Number.isInteger(maxSockets) || maxSockets < 1)) throw new RangeError(`maxSockets must be a whole number of at least 1, got ${maxSockets}`);
  const settings = { connections: maxSockets === Infinity ? null : maxSockets, idleTimeout: options.idleTimeout ?? 30_000, pipelining: options.pipelining ?? 1, limits: resolveClientLimits(options) };
  if (!Number.isInteger(settings.pipelining) || settings.pipelining < 1) throw new RangeError(`pipelining must be a whole number of at least 1, got ${settings.pipelining}`);
  assertTimeout(settings.idleTimeout, 'idleTimeout');
  return settings;
}

/** One origin's pool, and how many connections it has opened (to tell a reused connection from a new one). */
class OriginPool {
  connects = 0;
  readonly pool: Pool;

  constructor(pool: Pool) {
    this.pool = pool;
    pool.on('connect', () => this.connects++);
  }
}

class UndiciBinding implements BoundTransport {
  readonly handle: (request: ProxyRequest) => Promise<ProxyResponse>;
  readonly logsFailures = true;
  main: OriginPool | null = null;
  private readonly others = new Map<string, OriginPool>();

  constructor(
    readonly config: TransportConfig,
    readonly settings: UndiciSettings,
  ) {
    this.handle = (request) => this.forward(request);
  }

  startup(): void {
    this.main ??= this.createPool(this.config.target);
  }

  async shutdown(): Promise<void> {
    const pools = this.main === null ? [] : [this.main, ...this.others.values()];
    this.main = null;
    this.others.clear();
    // `destroy`, not `close`: the relay has drained or aborted its requests already; kept-alive connections go now.
    await Promise.all(pools.map((origin) => origin.pool.destroy()));
  }

  forward(request: ProxyRequest): Promise<ProxyResponse> {
    const refused = notSendable(this.main !== null, request);
    if (refused !== null) return Promise.reject(refused);
    const pool = request.target === undefined || request.target === this.config.target ? this.main! : this.poolOf(request.target);
    return new Promise<ProxyResponse>((resolve, reject) => {
      new UndiciAttempt(this, pool, request, resolve, reject).send();
    });
  }

  private poolOf(target: Target): OriginPool {
    const key = target.socketPath ?? target.origin;
    let pool = this.others.get(key);
    if (pool === undefined) this.others.set(key, (pool = this.createPool(target)));
    return pool;
  }

  private createPool(target: Target): OriginPool {
    const { timeouts, tls } = this.config;
    const { connections, idleTimeout, pipelining } = this.settings;
    const connect = { timeout: timeouts.connect, ...tls, ...(target.socketPath === undefined ? {} : { socketPath: target.socketPath }) };
    // A unix: target is plain HTTP over the socket; the request's Host header names the service.
    const pool = new Pool(target.socketPath === undefined ? target.origin : 'http://localhost', {
      connections,
      pipelining,
      // 0: idle connections stay until the upstream closes them (undici wants a finite time).
      keepAliveTimeout: idleTimeout || maxTimer,
      keepAliveMaxTimeout: idleTimeout || maxTimer,
      strictContentLength: true,
      connect,
    });
    pool.on('disconnect', (_origin: URL, _targets: unknown, error: Error) => this.onDisconnect(target, error));
    return new OriginPool(pool);
  }

  /**
   * A connection closed. undici reports bytes after a complete response (which it cannot parse)
   * to no request: the response stood, and the relay logs it as node:http's transport does.
   */
  private onDisconnect(target: Target, error: Error): void {
    // undici's words for bytes that came when no request was waiting.
    if (error?.name !== 'HTTPParserError' && !(error?.message === 'bad response' && (error as { code?: string }).code === 'UND_ERR_SOCKET')) return;
    this.config.logger.warn({ url: target.origin, code: 'ERR_UPSTREAM_PROTOCOL', error: error.message }, 'upstream sent bytes after a complete response: the response is relayed, the connection closed');
  }
}

/** undici takes an async iterable body (its documentation says so; its types list streams only). */
type DispatchBody = Readable | null;

/** The longest delay a Node timer takes. */
const maxTimer = 2_147_483_647;

/**
 * One upstream exchange through undici's dispatch handler: undici calls `onConnect` when the
 * request is written to a connection, `onHeaders` per head (1xx included), `onData` per body
 * chunk (false pauses the connection until the body is read), `onComplete` with the trailers
 * and `onError` once for any failure.
 */
class UndiciAttempt implements AbortHandler {
  abort: ((reason?: Error) => void) | null = null;
  /** Set before undici gave an abort function: aborted as soon as it does. */
  pendingAbort: RelayError | null = null;
  body: UpstreamBody | null = null;
  settled = false;
  done = false;
  /** The pool's count of connections opened when this request was dispatched and when it was written. */
  connectsAtDispatch = 0;
  connectsAtWrite = -1;
  resent = false;
  /** Whether the request body is still being sent (undici reads it through an iterator). */
  sending = false;
  /** The request body's own failure, which names the attempt's failure. */
  bodyFailure: RelayError | null = null;
  writeTimer: NodeJS.Timeout | null = null;
  poolTimer: NodeJS.Timeout | null = null;
  /** Bounds the wait for the final head once a 1xx came (`watchFinalHead`). */
  headTimer: NodeJS.Timeout | null = null;
  /** When the request was written whole (`Date.now()`), 0 before. */
  sentAt = 0;
  /** A 1xx head came: the final one has a deadline. */
  informed = false;
  rawTrailers: RawFields | null = null;
  bodyErrorListener: ((error: Error) => void) | null = null;
  readonly target: Target;

  constructor(
    readonly host: UndiciBinding,
    readonly origin: OriginPool,
    readonly request: ProxyRequest,
    readonly resolve: (response: ProxyResponse) => void,
    readonly reject: (error: RelayError) => void,
  ) {
    this.target = request.target ?? host.config.target;
  }

  send(): void {
    const request = this.request;
    const read = this.host.config.timeouts.read;
    request.client.setAbortHandler(this);
    if (this.done) return;
    this.connectsAtDispatch = this.origin.connects;
    // false: every connection is busy now; this request may be one that waits for a connection.
    const free = this.origin.pool.dispatch({ path: request.path, method: request.method, headers: this.upstreamHeaders(), body: this.bodyStream() as DispatchBody, headersTimeout: read, bodyTimeout: 0 }, this);
    if (!free && this.abort === null && !this.done) this.watchPool();
  }

  /**
   * The request's headers for undici: another target's `Host`, and no `Expect` (undici refuses
   * it: the relay's server answers the client's `100 Continue` itself and the body follows).
   */
  private upstreamHeaders(): HeaderRecord {
    const headers = headersForTarget(this.request.headers, this.target, this.host.config.target);
    if (headers.expect === undefined) return headers;
    const copy = headers === this.request.headers ? copyHeaders(headers) : headers;
    delete copy.expect;
    this.request.client.sendContinue();
    return copy;
  }

  /**
   * The body as an async iterator that leaves the stream alone when undici stops early: undici
   * destroys a stream it was given once sent or failed, and the client's own request stream would
   * take the client's connection with it (no 502 could be answered). An iterator also keeps the
   * framing: undici sends a stream that already ended with a Content-Length it measured, where a
   * body the client sent chunked must stay chunked.
   */
  private bodyStream(): AsyncIterable<Buffer> | null {
    const body = this.request.body;
    if (body === null) return null;
    this.sending = true;
    this.bodyErrorListener ??= (error: Error) => this.onBodyError(error);
    body.on('error', this.bodyErrorListener);
    return body.iterator({ destroyOnReturn: false });
  }

  /** With every connection busy, `timeout.pool` bounds the wait for one (`onConnect` ends it). */
  private watchPool(): void {
    const pool = this.host.config.timeouts.pool;
    if (pool > 0) this.poolTimer = setTimeout(onPoolTimeout, pool, this);
  }

  onConnect(abort: (reason?: Error) => void): void {
    this.abort = abort;
    this.connectsAtWrite = this.origin.connects;
    this.clearPoolTimer();
    if (this.pendingAbort !== null) {
      abort(this.pendingAbort);
      return;
    }
    if (this.sending) this.watchWrite();
  }

  /** Arms the write timeout: the body must keep moving while undici sends it. */
  private watchWrite(): void {
    const write = this.host.config.timeouts.write;
    if (write > 0) this.writeTimer = setTimeout(onWriteTimeout, write, this);
  }

  onBodySent(): void {
    this.writeTimer?.refresh();
  }

  onRequestSent(): void {
    this.sending = false;
    this.clearWriteTimer();
    this.sentAt = Date.now();
    if (this.informed) this.watchFinalHead();
  }

  /**
   * undici restarts its headers timeout on every 1xx head, so an upstream sending `102 Processing`
   * forever would hold the client for good (the relay swallows 100 and 102). After the first 1xx,
   * the final head must come within `timeout.read` of the request's end, as for `httpTransport`
   * (got's `response` timeout and Envoy's route timeout are absolute too). Only then: without a
   * 1xx, undici's own timeout is the bound, and no timer is made per request.
   */
  private watchFinalHead(): void {
    const read = this.host.config.timeouts.read;
    if (read === 0 || this.headTimer !== null || this.done) return;
    const waited = this.sentAt === 0 ? 0 : Date.now() - this.sentAt;
    this.headTimer = setTimeout(onHeadTimeout, Math.max(0, read - waited), this);
  }

  onHeadTimeout(): void {
    this.headTimer = null;
    if (!this.done && !this.settled) this.abortWith(timeoutError('read', this.host.config.timeouts));
  }

  onHeaders(status: number, rawHeaders: RawFields, resume: () => void, statusText: string): boolean {
    if (this.done) return false;
    if (status === 101) {
      this.abortWith(switchedProtocols());
      return false;
    }
    const fields = latin1(rawHeaders);
    const unusable = unusableHead(status, fields);
    if (unusable !== null) {
      this.abortWith(unusable);
      return false;
    }
    if (status < 200) {
      // 100 and 102 are hop-by-hop; 103 carries the upstream's hints to the client.
      if (status === 103) this.request.client.sendEarlyHints(responseHeadersFromRaw(fields));
      if (!this.informed) {
        this.informed = true;
        if (!this.sending) this.watchFinalHead();
      }
      return true;
    }
    this.settled = true;
    this.clearHeadTimer();
    const headers = responseHeadersFromRaw(fields);
    const bodiless = this.request.method === 'HEAD' || status === 204 || status === 304;
    const response: ProxyResponse = { status, statusMessage: statusText ?? '', headers, body: null };
    if (!bodiless) {
      // An event stream may stay quiet longer than the read timeout: only the client's leaving ends it.
      const idle = isEventStream(headers['content-type'], this.host.settings.limits.eventStreams) ? 0 : this.host.config.timeouts.read;
      const body = new UpstreamBody(this, resume, idle, this.host.settings.limits.slowClientTimeout);
      this.body = body;
      response.body = body;
      // Only a body without a length (chunked) can end with trailer fields.
      if (headers['content-length'] === undefined) response.trailers = () => (this.rawTrailers === null ? null : trailerFieldsFromRaw(latin1(this.rawTrailers)));
    }
    // undici reports a malformed body only after the head (its parser's errors close the socket
    // a tick later): such a response reaches the client cut short, never looking complete.
    this.resolve(response);
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.body === null ? true : this.body.push(chunk);
  }

  onComplete(trailers: RawFields | null): void {
    this.finish();
    this.rawTrailers = trailers;
    if (this.body !== null) this.body.push(null);
    else if (!this.settled) this.fail(new RelayError('ERR_UPSTREAM_PROTOCOL', 'upstream response ended without a final head'));
  }

  onError(error: Error): void {
    const wasDone = this.done;
    this.finish();
    if (this.settled) {
      const body = this.body;
      if (body !== null && !body.destroyed) body.destroy(this.relayError(error));
      return;
    }
    if (wasDone) return;
    // No connection opened between dispatch and write: the request went out on a kept-alive one.
    const reused = this.connectsAtWrite === this.connectsAtDispatch;
    if (!this.resent && isStaleConnectionFailure(error, reused, this.request)) {
      this.resend();
      return;
    }
    this.fail(this.relayError(error));
  }

  /**
   * A kept-alive connection the upstream closed just as it was reused, for a request with no
   * body: nothing was processed, so it goes once more, on whatever connection the pool gives.
   */
  private resend(): void {
    this.resent = true;
    this.done = false;
    this.abort = null;
    this.send();
  }

  /** undici's error in the relay's terms (its codes are its own). */
  private relayError(error: Error): RelayError {
    if (error instanceof RelayError) return error;
    if (this.bodyFailure !== null) return this.bodyFailure;
    if (error.name === 'HTTPParserError') return new RelayError('ERR_UPSTREAM_PROTOCOL', `upstream sent invalid HTTP: ${error.message}`, { cause: error });
    const timeouts = this.host.config.timeouts;
    switch ((error as { code?: string }).code) {
      case 'UND_ERR_CONNECT_TIMEOUT':
        return new RelayError('ERR_CONNECT_TIMEOUT', `upstream connect timed out after ${timeouts.connect} ms`, { cause: error });
      case 'UND_ERR_HEADERS_TIMEOUT':
        // undici's headers timer runs while the body is stuck in a full socket: that is the upload's stall.
        return this.sending ? this.writeStall() : timeoutError('read', timeouts);
      case 'UND_ERR_BODY_TIMEOUT':
        return timeoutError('read', timeouts);
      case 'UND_ERR_SOCKET':
        return upstreamSocketError(error);
      case 'UND_ERR_INVALID_ARG':
      case 'UND_ERR_NOT_SUPPORTED':
        return new RelayError('ERR_INTERNAL', `cannot build the upstream request: ${error.message}`, { cause: error });
      case 'UND_ERR_HEADERS_OVERFLOW':
        return new RelayError('ERR_UPSTREAM_PROTOCOL', 'upstream response head is larger than the relay reads', { cause: error });
      case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
        return new RelayError('ERR_UPSTREAM_PROTOCOL', 'upstream response body does not match its Content-Length', { cause: error });
      default:
        return toRelayError(error);
    }
  }

  onClientAbort(reason: RelayError): void {
    this.abortWith(reason);
  }

  /** Tears the exchange down with `reason`, wherever it is. */
  abortWith(reason: RelayError): void {
    if (!this.settled) this.fail(reason);
    else if (this.body !== null && !this.body.readableEnded && !this.body.destroyed) this.body.destroy(reason);
    if (this.abort !== null) this.abort(reason);
    else this.pendingAbort = reason;
  }

  onBodyError(error: Error): void {
    this.bodyFailure = bodyFailure(this.request.body, this.request, error);
    this.abortWith(this.bodyFailure);
  }

  onWriteTimeout(): void {
    this.writeTimer = null;
    if (!this.done) this.abortWith(this.writeStall());
  }

  /** A stalled upload's error: undici pulls the body as it can send it, so what waits in the body is what the upstream did not take. */
  private writeStall(): RelayError {
    const body = this.request.body;
    return uploadStallError(body, body?.readableLength ?? 0, this.host.config.timeouts);
  }

  onPoolTimeout(): void {
    this.poolTimer = null;
    if (this.abort === null && !this.done) this.abortWith(timeoutError('pool', this.host.config.timeouts));
  }

  /** The client stopped reading longer than `slowClientTimeout`: its download is cut, as its fault. */
  onSlowReader(limit: number): void {
    const error = slowReaderError(limit);
    logClientFault(this.host.config, this.request, error);
    this.request.client.abort(error);
  }

  fail(error: RelayError): void {
    if (this.settled) return;
    this.settled = true;
    this.finish();
    this.request.client.setAbortHandler(null);
    logAttemptFailure(this.host.config, this.request, error);
    this.reject(error);
  }

  /** The exchange is over on undici's side: timers off, the request body's failures no longer ours. */
  private finish(): void {
    this.done = true;
    this.clearPoolTimer();
    this.clearWriteTimer();
    this.clearHeadTimer();
    if (this.bodyErrorListener !== null) this.request.body!.removeListener('error', this.bodyErrorListener);
  }

  private clearPoolTimer(): void {
    if (this.poolTimer === null) return;
    clearTimeout(this.poolTimer);
    this.poolTimer = null;
  }

  private clearHeadTimer(): void {
    if (this.headTimer === null) return;
    clearTimeout(this.headTimer);
    this.headTimer = null;
  }

  private clearWriteTimer(): void {
    if (this.writeTimer === null) return;
    clearTimeout(this.writeTimer);
    this.writeTimer = null;
  }
}

/**
 * The response body: chunks undici hands over, read by the relay. Two clocks, never both: while
 * the relay reads, the upstream may be silent at most `idle` ms (`timeout.read`; 0 for an event
 * stream); while a full buffer pauses undici's connection, the client has `slow` ms
 * (`slowClientTimeout`, 0 = none) to read again before its download is cut as its own fault.
 */
class UpstreamBody extends Readable {
  private idleTimer: NodeJS.Timeout | null = null;
  private stalled: NodeJS.Timeout | null = null;

  constructor(
    private readonly attempt: UndiciAttempt,
    private readonly resumeUpstream: () => void,
    private readonly idle: number,
    private readonly slow: number,
  ) {
    super();
    this.armIdle();
  }

  override push(chunk: Buffer | null): boolean {
    const more = super.push(chunk);
    if (chunk === null) this.clearTimers();
    else if (more) this.idleTimer?.refresh();
    else this.stall();
    return more;
  }

  override _read(): void {
    if (this.stalled !== null) {
      clearTimeout(this.stalled);
      this.stalled = null;
      this.armIdle();
    }
    this.resumeUpstream();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.clearTimers();
    // The relay let go of an unfinished body (the client left, a stage replaced it): the connection goes too.
    if (!this.readableEnded) this.attempt.abortWith(error instanceof RelayError ? error : new RelayError('ERR_CLIENT_ABORTED', 'response body released before its end'));
    callback(error);
  }

  private armIdle(): void {
    if (this.idle > 0) this.idleTimer = setTimeout(onIdle, this.idle, this);
  }

  /** The relay's buffer is full: undici pauses the connection; the client's clock runs instead. */
  private stall(): void {
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (this.slow > 0 && this.stalled === null) this.stalled = setTimeout(onStalled, this.slow, this);
  }

  private clearTimers(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    if (this.stalled !== null) clearTimeout(this.stalled);
    this.idleTimer = this.stalled = null;
  }

  idledOut(): void {
    this.idleTimer = null;
    this.attempt.abortWith(timeoutError('read', this.attempt.host.config.timeouts));
  }

  stalledOut(): void {
    this.stalled = null;
    this.attempt.onSlowReader(this.slow);
  }
}

function onIdle(body: UpstreamBody): void {
  body.idledOut();
}

function onStalled(body: UpstreamBody): void {
  body.stalledOut();
}

function onWriteTimeout(attempt: UndiciAttempt): void {
  attempt.onWriteTimeout();
}

function onHeadTimeout(attempt: UndiciAttempt): void {
  attempt.onHeadTimeout();
}

function onPoolTimeout(attempt: UndiciAttempt): void {
  attempt.onPoolTimeout();
}

/** Header or trailer names and values as undici reads them: Buffers (its types say strings). */
type RawFields = Array<Buffer | string>;

function latin1(raw: RawFields): string[] {
  const text = new Array<string>(raw.length);
  for (let index = 0; index < raw.length; index++) {
    const field = raw[index]!;
    text[index] = typeof field === 'string' ? field : field.toString('latin1');
  }
  return text;
}

/** undici's socket errors: a `101` it refused, a malformed response, or a reset connection. */
function upstreamSocketError(error: Error): RelayError {
  if (error.message === 'bad upgrade') return switchedProtocols();
  if (error.message === 'bad response') return new RelayError('ERR_UPSTREAM_PROTOCOL', 'upstream answered 100 Continue to a request that did not expect it', { cause: error });
  return new RelayError('ERR_UPSTREAM_RESET', 'upstream connection closed before the response ended', { cause: error });
}
