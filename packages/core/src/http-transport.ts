import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { AbortHandler } from './client.js';
import { RelayError, toRelayError } from './errors.js';
import {
  bodyFailure,
  closedWithoutAnswer,
  headStatus,
  hasQueuedRequests,
  ignoreError,
  isStaleConnectionFailure,
  logAttemptFailure,
  logClientFault,
  resolveClientLimits,
  slowReaderBudget,
  slowReaderError,
  defaultClientLimits,
  UploadWatch,
  type ClientLimits,
  type Upload,
  logTrailingBytes,
  switchedProtocols,
  timeoutError,
} from './attempt-rules.js';
import { responseHeadersFromRaw } from './hop-by-hop.js';
import { assertNonNegative } from './options.js';
import { assertKnownKeys } from './known-keys.js';
import type { BoundTransport, ProxyRequest, ProxyResponse, Transport, TransportConfig } from './types.js';

/** Options of the default node:http/https transport. */
export interface HttpTransportOptions {
  /** Most connections open to the upstream at once; more requests wait up to `timeout.pool`. Default 256. */
  maxSockets?: number;
  /** Most idle keep-alive connections kept for reuse. Default 256. */
  maxFreeSockets?: number;
  /** Close an idle keep-alive connection after this many ms (sooner if the upstream's `Keep-Alive` says so). Default 30 000. */
  idleTimeout?: number;
  /**
   * How long a client may leave the response unread, in ms, before its download is cut (408
   * `ERR_CLIENT_TIMEOUT`, logged as the client's fault). While it does not read, the relay stops
   * reading the upstream, so `timeout.read` does not apply. Default 60 000 (nginx's `send_timeout`);
   * 0 = no limit. Below `timeout.read` it acts as `timeout.read`.
   */
  slowClientTimeout?: number;
  /**
   * Bytes per second a request body upload must keep up while other requests wait for a pooled
   * connection; a slower upload (measured over ≥ 1 s) is then cut (408 `ERR_CLIENT_TIMEOUT`) and
   * its connection goes to the waiting request. Without contention slow uploads are left alone.
   * Default 500 (Apache mod_reqtimeout's `MinRate`); 0 = never cut.
   */
  minUploadRate?: number;
}

const httpTransportOptionNames: readonly string[] = ['maxSockets', 'maxFreeSockets', 'idleTimeout', 'slowClientTimeout', 'minUploadRate'];

/**
 * The default transport: node:http or node:https with a keep-alive agent made in
 * `relay.startup()` and destroyed in `relay.shutdown()`. Streams bodies both ways with
 * backpressure and applies the relay's connect, read, write and pool timeouts.
 *
 * @example
 * createRelay({ targetBaseUrl: 'http://auth:8000', transport: httpTransport({ maxSockets: 64 }) });
 */
export function httpTransport(options: HttpTransportOptions = {}): Transport {
  if (options === null || typeof options !== 'object') throw new TypeError('httpTransport(options) needs an options object');
  assertKnownKeys(options, httpTransportOptionNames, 'httpTransport');
  const maxSockets = options.maxSockets ?? 256;
  const maxFreeSockets = options.maxFreeSockets ?? 256;
  const idleTimeout = options.idleTimeout ?? 30_000;
  if (maxSockets !== Infinity) assertNonNegative(maxSockets, 'maxSockets');
  if (maxSockets < 1) throw new RangeError(`maxSockets must be at least 1, got ${maxSockets}`);
  assertNonNegative(maxFreeSockets, 'maxFreeSockets');
  assertNonNegative(idleTimeout, 'idleTimeout');
  const limits = resolveClientLimits(options);
  return {
    name: 'http',
    bind(config: TransportConfig): BoundTransport {
      const secure = config.target.protocol === 'https:';
      const createAgent = function createAgent(): HttpAgent {
        const common = { keepAlive: true, maxSockets, maxFreeSockets, scheduling: 'lifo' as const, timeout: idleTimeout };
        return secure ? new HttpsAgent({ ...common, ...config.tls }) : new HttpAgent(common);
      };
      return new HttpBinding(config, secure, createAgent, limits);
    },
  };
}

/**
 * Binds the node:http exchange machinery (phases, timeouts, client abort, stale-socket retry)
 * to an agent made by `createAgent` at startup and destroyed at shutdown. For transports that
 * only change where connections come from, such as `inMemoryTransport`. Not exported from
 * the package entry.
 */
export function bindHttpExchange(config: TransportConfig, secure: boolean, createAgent: () => HttpAgent): BoundTransport {
  return new HttpBinding(config, secure, createAgent, defaultClientLimits);
}

const kAttempt = Symbol('relay.attempt');
type UpstreamRequest = ClientRequest & { [kAttempt]?: Attempt };
/** The attempt a pooled socket serves now, `null` while it idles in the pool; absent before its first use. */
const kSocketAttempt = Symbol('relay.socketAttempt');
type UpstreamSocket = Socket & { [kSocketAttempt]?: Attempt | null };

const enum Phase {
  Pool,
  Connect,
  Write,
  Read,
  Streaming,
  Done,
}


class HttpBinding implements BoundTransport {
  readonly handle: (request: ProxyRequest) => Promise<ProxyResponse>;
  readonly logsFailures = true;
  agent: HttpAgent | null = null;
  readonly config: TransportConfig;
  private readonly createAgent: () => HttpAgent;
  readonly send: typeof httpRequest;
  readonly connectEvent: 'connect' | 'secureConnect';
  readonly uploads: UploadWatch;

  constructor(
    config: TransportConfig,
    secure: boolean,
    createAgent: () => HttpAgent,
    readonly limits: Readonly<ClientLimits>,
  ) {
    this.config = config;
    this.uploads = new UploadWatch(limits.minUploadRate, () => this.agent);
    this.createAgent = createAgent;
    this.send = secure ? httpsRequest : httpRequest;
    this.connectEvent = secure ? 'secureConnect' : 'connect';
    this.handle = (request) => this.forward(request);
  }

  startup(): void {
    if (this.agent !== null) return;
    this.agent = this.createAgent();
  }

  shutdown(): void {
    this.uploads.stop();
    this.agent?.destroy();
    this.agent = null;
  }

  forward(request: ProxyRequest): Promise<ProxyResponse> {
    const agent = this.agent;
    if (agent === null) return Promise.reject(new RelayError('ERR_NOT_STARTED', 'transport is not started: call relay.startup()'));
    const aborted = request.client.abortReason;
    if (aborted !== null) return Promise.reject(aborted);
    return new Promise<ProxyResponse>((resolve, reject) => {
      new Attempt(this, agent, request, resolve, reject).start();
    });
  }
}

/** One upstream exchange: its phase, timers and the promise of its response head. */
class Attempt implements AbortHandler, Upload {
  phase = Phase.Pool;
  uploadMark = { bytes: 0, at: 0 };
  /** When the connection last moved before the client stopped reading, or 0 while it reads. */
  stalledSince = 0;
  upstream: UpstreamRequest | null = null;
  socket: UpstreamSocket | null = null;
  response: IncomingMessage | null = null;
  poolTimer: NodeJS.Timeout | null = null;
  settled = false;
  retriedStaleSocket = false;

  constructor(
    readonly binding: HttpBinding,
    readonly agent: HttpAgent,
    readonly request: ProxyRequest,
    readonly resolve: (response: ProxyResponse) => void,
    readonly reject: (error: RelayError) => void,
  ) {}

  start(): void {
    const { target, timeouts } = this.binding.config;
    const request = this.request;
    let upstream: UpstreamRequest;
    try {
      upstream = this.binding.send({
        host: target.hostname,
        port: target.port,
        path: request.path,
        method: request.method,
        headers: request.headers as Record<string, string | string[]>,
        agent: this.agent,
      });
    } catch (error) {
      // Invalid header names or values set by a stage land here, before any byte is sent.
      this.fail(new RelayError('ERR_INTERNAL', `cannot build the upstream request: ${(error as Error).message}`, { cause: error }));
      return;
    }
    upstream[kAttempt] = this;
    this.upstream = upstream;
    upstream.on('socket', onUpstreamSocket);
    upstream.on('response', onUpstreamResponse);
    upstream.on('error', onUpstreamError);
    upstream.on('close', onUpstreamClose);
    if (timeouts.read !== timeouts.write) upstream.on('finish', onUpstreamFinish);
    if (hasQueuedRequests(this.agent)) {
      if (timeouts.pool > 0) this.poolTimer = setTimeout(onPoolTimeout, timeouts.pool, this);
      this.binding.uploads.contended();
    }
    request.client.setAbortHandler(this);

    const body = request.body;
    if (body === null) {
      upstream.end();
      return;
    }
    // A body without a length is sent chunked, whatever the method: never reframed as something else.
    if (request.headers['content-length'] === undefined) upstream.useChunkedEncodingByDefault = true;
    (body as BodyStream)[kAttempt] = this;
    body.on('error', onBodyError);
    body.pipe(upstream);
  }

  onSocket(socket: Socket): void {
    if (this.poolTimer !== null) {
      clearTimeout(this.poolTimer);
      this.poolTimer = null;
    }
    const pooled = socket as UpstreamSocket;
    // Timeouts are watched on the socket itself, with listeners added once per connection:
    // ClientRequest.setTimeout would add and remove listeners and timers on every request.
    if (pooled[kSocketAttempt] === undefined) {
      socket.on('timeout', onSocketTimeout);
      socket.on('free', onSocketFree);
    }
    pooled[kSocketAttempt] = this;
    this.socket = pooled;
    const timeouts = this.binding.config.timeouts;
    if (socket.connecting) {
      this.phase = Phase.Connect;
      socket.setTimeout(timeouts.connect);
      socket.once(this.binding.connectEvent, () => this.onConnected());
      return;
    }
    this.onConnected();
  }

  onConnected(): void {
    if (this.phase >= Phase.Read) return;
    const timeouts = this.binding.config.timeouts;
    if (this.upstream!.writableFinished) {
      this.phase = Phase.Read;
      this.watch(timeouts.read);
    } else {
      this.phase = Phase.Write;
      this.watch(timeouts.write);
      if (this.request.body !== null) this.binding.uploads.add(this);
    }
  }

  uploadSocket(): Socket | null {
    return this.phase === Phase.Write ? this.socket : null;
  }

  cutSlowUpload(error: RelayError): void {
    this.abortWith(error);
  }

  onFinish(): void {
    this.binding.uploads.delete(this);
    if (this.phase !== Phase.Write) return;
    this.phase = Phase.Read;
    this.watch(this.binding.config.timeouts.read);
  }

  /**
   * Sets the socket's inactivity timeout for this phase. A reused socket often has it already
   * (the agent's idle timeout): then nothing is re-armed, and the request write that follows
   * restarts the inactivity clock anyway.
   */
  private watch(ms: number): void {
    const socket = this.socket!;
    if (socket.timeout !== ms) socket.setTimeout(ms);
  }

  onResponse(response: IncomingMessage): void {
    this.binding.uploads.delete(this);
    this.phase = Phase.Streaming;
    this.response = response;
    if (response.statusCode === 101) {
      this.fail(switchedProtocols());
      return;
    }
    // Bytes read with the head may still fail to parse, in this same tick: hand the head on
    // after that, so such a failure is a 502 rather than a head whose body never comes.
    process.nextTick(settleHead, this);
  }

  settleHead(): void {
    if (this.settled) return;
    this.settled = true;
    const response = this.response!;
    const status = response.statusCode!;
    const bodiless = this.request.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (bodiless) response.resume();
    // An answer before the upload ended: once it is read, the connection cannot be reused.
    if (!this.upstream!.writableFinished) response.once('end', onEarlyResponseEnd.bind(null, this));
    this.resolve({
      status,
      statusMessage: response.statusMessage ?? '',
      headers: responseHeadersFromRaw(response.rawHeaders),
      body: bodiless ? null : response,
    });
  }

  onTimeout(): void {
    if (this.phase === Phase.Done || this.response?.complete === true) return;
    if (this.settled && this.response!.isPaused()) {
      this.onSlowReader();
      return;
    }
    const sending = this.phase === Phase.Write && !this.upstream!.writableFinished;
    this.abortWith(timeoutError(this.phase === Phase.Connect ? 'connect' : sending ? 'write' : 'read', this.binding.config.timeouts));
  }

  /**
   * The upstream connection was silent because the relay stopped reading it: the client is not
   * reading the response. That is the client's side: `slowClientTimeout` applies, counted from
   * when the connection last moved, and its expiry is logged as the client's fault.
   */
  onSlowReader(): void {
    const socket = this.socket!;
    const limit = this.binding.limits.slowClientTimeout;
    if (this.stalledSince === 0) {
      this.stalledSince = Date.now() - (socket.timeout ?? 0);
      this.response!.once('resume', () => this.onReaderResumed());
    }
    const left = slowReaderBudget(limit, this.stalledSince);
    if (left > 0) {
      socket.setTimeout(left === Infinity ? 0 : left);
      return;
    }
    const error = slowReaderError(limit);
    logClientFault(this.binding.config, this.request, error);
    this.request.client.abort(error);
  }

  onReaderResumed(): void {
    this.stalledSince = 0;
    if (this.phase !== Phase.Done && this.socket !== null) this.watch(this.binding.config.timeouts.read);
  }

  onPoolTimeout(): void {
    this.poolTimer = null;
    if (this.phase !== Phase.Pool) return;
    this.abortWith(timeoutError('pool', this.binding.config.timeouts));
  }

  onError(error: Error): void {
    const response = this.response;
    if (response?.complete === true) {
      // A whole response followed by bytes that are not HTTP: the response stands, the
      // connection (which Node closes) does not.
      logTrailingBytes(this.binding.config, this.request, error);
      return;
    }
    if (this.settled) {
      // After the head the body stream carries the failure to the relay.
      if (response !== null && !response.destroyed) response.destroy(toRelayError(error));
      return;
    }
    if (response === null && !this.retriedStaleSocket && isStaleConnectionFailure(error, this.upstream!.reusedSocket, this.request)) {
      // A keep-alive connection the upstream closed just as we reused it: nothing was
      // processed, so send the request once more on a fresh connection.
      this.retriedStaleSocket = true;
      this.detach();
      this.phase = Phase.Pool;
      this.start();
      return;
    }
    this.fail(toRelayError(error));
  }

  onClientAbort(reason: RelayError): void {
    this.abortWith(reason);
  }

  /** The upstream request closed: before a head was handed on, that is a failure of its own. */
  onClose(): void {
    // With a head already read, `settleHead` (queued) decides.
    if (!this.settled && this.response === null) this.fail(closedWithoutAnswer(headStatus(this.upstream!)));
  }

  /** Tears the upstream exchange down with `reason`, wherever it is. */
  abortWith(reason: RelayError): void {
    if (this.phase === Phase.Done) return;
    const response = this.response;
    if (response !== null && this.settled) {
      if (!response.complete && !response.destroyed) response.destroy(reason);
      this.upstream?.destroy();
      return;
    }
    this.fail(reason);
  }

  fail(error: RelayError): void {
    if (this.settled) return;
    this.settled = true;
    this.phase = Phase.Done;
    this.binding.uploads.delete(this);
    if (this.poolTimer !== null) {
      clearTimeout(this.poolTimer);
      this.poolTimer = null;
    }
    this.detach();
    this.upstream?.destroy();
    this.response?.destroy();
    this.request.client.setAbortHandler(null);
    logAttemptFailure(this.binding.config, this.request, error);
    this.reject(error);
  }

  /**
   * The upstream answered in full while the upload was still going (a refusal before the body
   * was read): the rest of the body goes nowhere, and a connection with half a request on it is
   * never reused. nginx and Envoy close it too.
   */
  onEarlyResponseEnd(): void {
    if (this.upstream!.writableFinished) return;
    this.binding.uploads.delete(this);
    this.detach();
    this.upstream!.destroy();
  }

  /** Stops piping the request body into this attempt's upstream request. */
  private detach(): void {
    const body = this.request.body;
    const upstream = this.upstream;
    if (body !== null && upstream !== null) body.unpipe(upstream);
    if (upstream !== null) upstream.removeListener('error', onUpstreamError).removeListener('close', onUpstreamClose).on('error', ignoreError);
  }
}

type BodyStream = NodeJS.ReadableStream & { [kAttempt]?: Attempt };

function onUpstreamSocket(this: UpstreamRequest, socket: Socket): void {
  this[kAttempt]!.onSocket(socket);
}

function onUpstreamResponse(this: UpstreamRequest, response: IncomingMessage): void {
  this[kAttempt]!.onResponse(response);
}

function onUpstreamError(this: UpstreamRequest, error: Error): void {
  this[kAttempt]!.onError(error);
}

function onUpstreamClose(this: UpstreamRequest): void {
  this[kAttempt]!.onClose();
}

function settleHead(attempt: Attempt): void {
  attempt.settleHead();
}

function onEarlyResponseEnd(attempt: Attempt): void {
  attempt.onEarlyResponseEnd();
}

function onSocketTimeout(this: UpstreamSocket): void {
  // An idle pooled socket has no attempt: the agent closes it.
  this[kSocketAttempt]?.onTimeout();
}

function onSocketFree(this: UpstreamSocket): void {
  this[kSocketAttempt] = null;
}

function onUpstreamFinish(this: UpstreamRequest): void {
  this[kAttempt]!.onFinish();
}

function onPoolTimeout(attempt: Attempt): void {
  attempt.onPoolTimeout();
}

function onBodyError(this: BodyStream, error: Error): void {
  const attempt = this[kAttempt];
  if (attempt !== undefined) attempt.abortWith(bodyFailure(this, attempt.request, error));
}
