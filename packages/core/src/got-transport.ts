import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { got, type Delays, type Got, type Hooks, type OptionsInit, type Request as GotStream } from 'got';
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
  rearmRequestTimeout,
  resolveClientLimits,
  slowReaderBudget,
  slowReaderError,
  UploadWatch,
  type ClientLimits,
  type Upload,
  switchedProtocols,
  timeoutError,
} from './attempt-rules.js';
import { responseHeadersFromRaw } from './hop-by-hop.js';
import { assertNonNegative } from './options.js';
import { assertKnownKeys } from './known-keys.js';
import type { BoundTransport, ProxyRequest, ProxyResponse, Transport, TransportConfig } from './types.js';

/** Options of the got transport. */
export interface GotTransportOptions {
  /** Most connections open to the upstream at once; more requests wait up to `timeout.pool`. Default 256. */
  maxSockets?: number;
  /** Most idle keep-alive connections kept for reuse. Default 256. */
  maxFreeSockets?: number;
  /** Close an idle keep-alive connection after this many ms. Default 30 000. */
  idleTimeout?: number;
  /**
   * got hooks: `init`, `beforeRequest` (sign a request, add a header) and `beforeError` run
   * for every request. `beforeRedirect`, `beforeRetry`, `beforeCache` and `afterResponse`
   * never run here (no redirects, retries, cache or promise API) and are refused.
   */
  hooks?: Pick<Partial<Hooks>, 'init' | 'beforeRequest' | 'beforeError'>;
  /** got's DNS cache: `true` for got's shared `CacheableLookup`, or your own instance. Default none. */
  dnsCache?: OptionsInit['dnsCache'];
  /** As `httpTransport`'s: how long a client may leave the response unread, in ms. Default 60 000; 0 = no limit. */
  slowClientTimeout?: number;
  /** As `httpTransport`'s: bytes/s an upload must keep up while requests wait for a connection. Default 500; 0 = never cut. */
  minUploadRate?: number;
}

const gotTransportOptionNames: readonly string[] = ['maxSockets', 'maxFreeSockets', 'idleTimeout', 'hooks', 'dnsCache', 'slowClientTimeout', 'minUploadRate'];
const usableHooks = new Set(['init', 'beforeRequest', 'beforeError']);

/**
 * A transport built on got 14's stream API, for users who want got's hooks and DNS cache.
 * Retries, redirects, decompression and HTTP-error throwing are off (they belong to stages),
 * incoming headers are never copied by got, and got adds no `User-Agent`. One `got.extend`
 * instance and one keep-alive agent are made in `relay.startup()`; the agent is destroyed in
 * `relay.shutdown()`. The path and query are sent byte for byte, as with `httpTransport`.
 *
 * Timeouts: `connect` bounds each of got's `lookup`, `connect` and `secureConnect` phases;
 * `read` is got's `response` (the wait for the head) and then the longest silence between
 * two body bytes; `write` the longest stall while sending the body; `pool` the wait for a
 * free connection. got's own `send` and `read` are deadlines for a whole phase, which would
 * cut long uploads and long streams, so they are not used.
 *
 * It costs about 3 to 3.5 times the CPU per request of `httpTransport` (benchmarks/RESULTS.md):
 * choose it for got's features, not for speed.
 *
 * @example
 * import { gotTransport } from '@relay/core/got';
 * createRelay({ targetBaseUrl: 'http://auth:8000', transport: gotTransport({ dnsCache: true }) });
 */
export function gotTransport(options: GotTransportOptions = {}): Transport {
  if (options === null || typeof options !== 'object') throw new TypeError('gotTransport(options) needs an options object');
  assertKnownKeys(options, gotTransportOptionNames, 'gotTransport');
  const maxSockets = options.maxSockets ?? 256;
  const maxFreeSockets = options.maxFreeSockets ?? 256;
  const idleTimeout = options.idleTimeout ?? 30_000;
  if (maxSockets !== Infinity) assertNonNegative(maxSockets, 'maxSockets');
  if (maxSockets < 1) throw new RangeError(`maxSockets must be at least 1, got ${maxSockets}`);
  assertNonNegative(maxFreeSockets, 'maxFreeSockets');
  assertNonNegative(idleTimeout, 'idleTimeout');
  const hooks = checkHooks(options.hooks);
  const limits = resolveClientLimits(options);
  const dnsCache = options.dnsCache;
  if (dnsCache !== undefined && typeof dnsCache !== 'boolean' && typeof (dnsCache as { lookup?: unknown } | null)?.lookup !== 'function') {
    throw new TypeError('dnsCache must be true, false or a CacheableLookup instance');
  }
  return {
    name: 'got',
    bind(config: TransportConfig): BoundTransport {
      return new GotBinding(config, { maxSockets, maxFreeSockets, idleTimeout }, hooks, dnsCache, limits);
    },
  };
}

function checkHooks(hooks: GotTransportOptions['hooks']): Partial<Hooks> | undefined {
  if (hooks === undefined) return undefined;
  if (hooks === null || typeof hooks !== 'object') throw new TypeError('hooks must be an object of got hook arrays');
  for (const [name, list] of Object.entries(hooks)) {
    if (!usableHooks.has(name)) {
      throw new TypeError(`hooks.${name} never runs in gotTransport (no redirects, retries, cache or promise API); use init, beforeRequest or beforeError`);
    }
    if (!Array.isArray(list) || !list.every((hook) => typeof hook === 'function')) throw new TypeError(`hooks.${name} must be an array of functions`);
  }
  return hooks as Partial<Hooks>;
}

const kAttempt = Symbol('relay.gotAttempt');
type TaggedStream = GotStream & { [kAttempt]?: GotAttempt };
type TaggedRequest = ClientRequest & { [kAttempt]?: GotAttempt };
type TaggedBody = NodeJS.ReadableStream & { [kAttempt]?: GotAttempt };

/**
 * The request path and query exactly as the relay mapped them, keyed by the URL object got
 * made for the request. got parses every URL with WHATWG rules, which re-encode `'`, `"`,
 * `<`, `>` and non-ASCII bytes; `rawPathRequest` puts the original bytes back. A hook that
 * assigns a new `options.url` makes a new object, which is then sent as got built it.
 */
const rawPaths = new WeakMap<URL, string>();

function rawPathRequest(url: URL, options: RequestOptions, callback?: (response: IncomingMessage) => void): ClientRequest {
  const raw = rawPaths.get(url);
  if (raw !== undefined) options.path = raw;
  return url.protocol === 'https:' ? httpsRequest(url, options, callback) : httpRequest(url, options, callback);
}

const enum Phase {
  Pool,
  Connect,
  Write,
  Read,
  Streaming,
  Done,
}

const connectEvents = new Set(['lookup', 'connect', 'secureConnect']);

class GotBinding implements BoundTransport {
  readonly handle: (request: ProxyRequest) => Promise<ProxyResponse>;
  readonly logsFailures = true;
  readonly config: TransportConfig;
  readonly connectEvent: 'connect' | 'secureConnect';
  agent: HttpAgent | null = null;
  client: Got | null = null;
  readonly uploads: UploadWatch;

  constructor(
    config: TransportConfig,
    private readonly agentOptions: { maxSockets: number; maxFreeSockets: number; idleTimeout: number },
    private readonly hooks: Partial<Hooks> | undefined,
    private readonly dnsCache: OptionsInit['dnsCache'],
    readonly limits: Readonly<ClientLimits>,
  ) {
    this.config = config;
    this.uploads = new UploadWatch(limits.minUploadRate, () => this.agent);
    this.connectEvent = config.target.protocol === 'https:' ? 'secureConnect' : 'connect';
    this.handle = (request) => this.forward(request);
  }

  startup(): void {
    if (this.client !== null) return;
    const { target, timeouts, tls } = this.config;
    const { maxSockets, maxFreeSockets, idleTimeout } = this.agentOptions;
    const common = { keepAlive: true, maxSockets, maxFreeSockets, scheduling: 'lifo' as const, timeout: idleTimeout };
    const secure = target.protocol === 'https:';
    const agent = secure ? new HttpsAgent({ ...common, ...tls }) : new HttpAgent(common);
    const delays: Partial<Delays> = {};
    if (timeouts.connect > 0) delays.lookup = delays.connect = delays.secureConnect = timeouts.connect;
    if (timeouts.read > 0) delays.response = timeouts.read;
    this.client = got.extend({
      prefixUrl: '',
      agent: secure ? { https: agent as HttpsAgent } : { http: agent },
      request: rawPathRequest,
      retry: { limit: 0 },
      throwHttpErrors: false,
      decompress: false,
      followRedirect: false,
      copyPipedHeaders: false,
      allowGetBody: true,
      timeout: delays,
      // got's default User-Agent is not the client's: a proxy adds none.
      headers: { 'user-agent': undefined },
      https: {
        certificateAuthority: tls.ca,
        rejectUnauthorized: tls.rejectUnauthorized,
        serverName: tls.servername,
        certificate: tls.cert,
        key: tls.key,
        pfx: tls.pfx,
        passphrase: tls.passphrase,
      },
      ...(this.hooks !== undefined ? { hooks: this.hooks } : {}),
      ...(this.dnsCache !== undefined ? { dnsCache: this.dnsCache } : {}),
    });
    this.agent = agent;
  }

  shutdown(): void {
    this.uploads.stop();
    this.agent?.destroy();
    this.agent = null;
    this.client = null;
  }

  forward(request: ProxyRequest): Promise<ProxyResponse> {
    const client = this.client;
    if (client === null) return Promise.reject(new RelayError('ERR_NOT_STARTED', 'transport is not started: call relay.startup()'));
    const aborted = request.client.abortReason;
    if (aborted !== null) return Promise.reject(aborted);
    return new Promise<ProxyResponse>((resolve, reject) => {
      new GotAttempt(this, client, this.agent!, request, resolve, reject).start();
    });
  }
}

/** One upstream exchange through got: its phase, timers and the promise of its response head. */
class GotAttempt implements AbortHandler, Upload {
  uploadMark = { bytes: 0, at: 0 };
  /** When the connection last moved before the client stopped reading, or 0 while it reads. */
  stalledSince = 0;
  phase = Phase.Pool;
  stream: TaggedStream | null = null;
  upstream: TaggedRequest | null = null;
  responded = false;
  settled = false;
  poolTimer: NodeJS.Timeout | null = null;
  retriedStaleSocket = false;
  /** A failure of the node:http request got made, which got may report late or never. */
  upstreamError: Error | null = null;

  constructor(
    readonly binding: GotBinding,
    readonly client: Got,
    readonly agent: HttpAgent,
    readonly request: ProxyRequest,
    readonly resolve: (response: ProxyResponse) => void,
    readonly reject: (error: RelayError) => void,
  ) {}

  start(): void {
    const request = this.request;
    const stream = this.client.stream(this.binding.config.target.origin + request.path, {
      method: request.method as OptionsInit['method'],
      headers: request.headers as Record<string, string | string[]>,
    }) as TaggedStream;
    const url = stream.options?.url;
    if (url instanceof URL) rawPaths.set(url, request.path);
    stream[kAttempt] = this;
    this.stream = stream;
    stream.on('request', onGotRequest);
    stream.on('response', onGotResponse);
    stream.on('error', onGotError);
    request.client.setAbortHandler(this);
    // The client may have gone away while a retry was being made: the handler ran at once.
    if (this.settled) return;

    const body = request.body;
    // got ends a HEAD itself; it never carries a body.
    if (request.method === 'HEAD') return;
    if (body === null) {
      stream.end();
      return;
    }
    (body as TaggedBody)[kAttempt] = this;
    body.on('error', onBodyError);
    body.pipe(stream);
  }

  /** got made the node:http request: watch its socket for the pool, write and read phases. */
  onRequest(upstream: TaggedRequest): void {
    this.upstream = upstream;
    upstream[kAttempt] = this;
    // A body without a length is sent chunked, whatever the method: never reframed as something else.
    if (this.request.body !== null && this.request.headers['content-length'] === undefined) upstream.useChunkedEncodingByDefault = true;
    upstream.on('socket', onUpstreamSocket);
    upstream.on('finish', onUpstreamFinish);
    upstream.on('timeout', onUpstreamTimeout);
    upstream.on('error', onUpstreamError);
    upstream.on('close', onUpstreamClose);
    const pool = this.binding.config.timeouts.pool;
    if (hasQueuedRequests(this.agent)) {
      if (pool > 0) this.poolTimer = setTimeout(onPoolTimeout, pool, this);
      this.binding.uploads.contended();
    }
  }

  onSocket(socket: Socket): void {
    this.clearPoolTimer();
    if (this.phase !== Phase.Pool) return;
    if (socket.connecting) {
      // got's lookup, connect and secureConnect timeouts run now.
      this.phase = Phase.Connect;
      socket.once(this.binding.connectEvent, () => this.onConnected());
      return;
    }
    this.onConnected();
  }

  onConnected(): void {
    if (this.phase >= Phase.Read) return;
    const upstream = this.upstream!;
    if (upstream.writableFinished) {
      this.phase = Phase.Read;
      return;
    }
    this.phase = Phase.Write;
    const write = this.binding.config.timeouts.write;
    if (write > 0) upstream.setTimeout(write);
    if (this.request.body !== null) this.binding.uploads.add(this);
  }

  uploadSocket(): Socket | null {
    return this.phase === Phase.Write ? (this.upstream?.socket ?? null) : null;
  }

  cutSlowUpload(error: RelayError): void {
    this.abortWith(error);
  }

  onFinish(): void {
    this.binding.uploads.delete(this);
    if (this.phase !== Phase.Write) return;
    // The head wait is got's `response` timeout from here.
    this.phase = Phase.Read;
    if (this.binding.config.timeouts.write > 0) this.upstream!.setTimeout(0);
  }

  onResponse(response: IncomingMessage): void {
    this.binding.uploads.delete(this);
    this.clearPoolTimer();
    this.phase = Phase.Streaming;
    if (response.statusCode === 101) {
      this.fail(switchedProtocols());
      return;
    }
    // Bytes read with the head may still fail to parse, in this same tick: hand the head on
    // after that, so such a failure is a 502 rather than a head whose body never comes.
    process.nextTick(settleHead, this, response);
  }

  settleHead(response: IncomingMessage): void {
    if (this.settled) return;
    const failure = this.upstreamError;
    if (failure !== null) {
      // got's stream is failing already (a malformed first chunk, or bytes after a whole
      // response, which got does not deliver): nothing of it can reach the client.
      this.fail(this.toRelayError(failure));
      return;
    }
    this.responded = true;
    this.settled = true;
    const read = this.binding.config.timeouts.read;
    if (read > 0) this.upstream?.setTimeout(read);
    const status = response.statusCode!;
    const stream = this.stream!;
    const bodiless = this.request.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (bodiless) stream.resume();
    // An answer before the upload ended: once it is read, the connection cannot be reused.
    if (this.upstream?.writableFinished === false) response.once('end', onEarlyResponseEnd.bind(null, this));
    this.resolve({
      status,
      statusMessage: response.statusMessage ?? '',
      headers: responseHeadersFromRaw(response.rawHeaders),
      body: bodiless ? null : stream,
    });
  }

  onTimeout(): void {
    if (this.responded && this.stream!.isPaused()) {
      this.onSlowReader();
      return;
    }
    this.abortWith(timeoutError(this.phase === Phase.Write ? 'write' : 'read', this.binding.config.timeouts));
  }

  /**
   * The upstream connection was silent because the relay stopped reading it: the client is not
   * reading the response. That is the client's side: `slowClientTimeout` applies, counted from
   * when the connection last moved, and its expiry is logged as the client's fault.
   */
  onSlowReader(): void {
    const upstream = this.upstream!;
    const limit = this.binding.limits.slowClientTimeout;
    if (this.stalledSince === 0) {
      this.stalledSince = Date.now() - this.binding.config.timeouts.read;
      this.stream!.once('resume', () => this.onReaderResumed());
    }
    const left = slowReaderBudget(limit, this.stalledSince);
    if (left > 0) {
      rearmRequestTimeout(upstream, left === Infinity ? 0 : left);
      return;
    }
    const error = slowReaderError(limit);
    logClientFault(this.binding.config, this.request, error);
    this.request.client.abort(error);
  }

  onReaderResumed(): void {
    this.stalledSince = 0;
    const read = this.binding.config.timeouts.read;
    // The stall re-armed the request's timeout relay, which has not fired since: a plain reset.
    if (this.phase !== Phase.Done && read > 0) this.upstream?.setTimeout(read);
  }

  onPoolTimeout(): void {
    this.poolTimer = null;
    if (this.phase !== Phase.Pool) return;
    this.abortWith(timeoutError('pool', this.binding.config.timeouts));
  }

  onError(error: Error): void {
    // After the head the body stream carries the failure to the relay.
    if (this.settled) return;
    if (this.phase !== Phase.Streaming && !this.retriedStaleSocket && isStaleConnectionFailure(error, this.stream!.reusedSocket === true, this.request)) {
      // A keep-alive connection the upstream closed just as we reused it: nothing was
      // processed, so send the request once more on a fresh connection.
      this.retriedStaleSocket = true;
      this.detach();
      this.phase = Phase.Pool;
      this.upstream = null;
      this.upstreamError = null;
      this.start();
      return;
    }
    this.fail(this.toRelayError(error));
  }

  toRelayError(error: Error): RelayError {
    const event = (error as { event?: unknown }).event;
    if (error.name === 'TimeoutError' && typeof event === 'string') {
      const timeouts = this.binding.config.timeouts;
      if (connectEvents.has(event)) {
        return new RelayError('ERR_CONNECT_TIMEOUT', `upstream connect timed out after ${timeouts.connect} ms (${event})`, { cause: error });
      }
      if (event === 'response') return new RelayError('ERR_READ_TIMEOUT', `upstream read timed out after ${timeouts.read} ms`, { cause: error });
    }
    return toRelayError(error);
  }

  /** The node:http request failed: remembered, since got may hand on a head it has already given up. */
  onUpstreamError(error: Error): void {
    this.upstreamError ??= error;
  }

  /**
   * The node:http request closed. got reports nothing when the upstream answered `101` with
   * `Upgrade` to a plain request (Node only closes the connection): that is a failure here.
   */
  onUpstreamClose(): void {
    if (this.settled || headStatus(this.upstream!) !== 101) return;
    this.fail(closedWithoutAnswer(101));
  }

  onClientAbort(reason: RelayError): void {
    this.abortWith(reason);
  }

  /** Tears the upstream exchange down with `reason`, wherever it is. */
  abortWith(reason: RelayError): void {
    if (this.phase === Phase.Done) return;
    if (this.responded) {
      const stream = this.stream!;
      if (!stream.readableEnded && !stream.destroyed) stream.destroy(reason);
      return;
    }
    this.fail(reason);
  }

  fail(error: RelayError): void {
    if (this.settled) return;
    this.settled = true;
    this.phase = Phase.Done;
    this.binding.uploads.delete(this);
    this.clearPoolTimer();
    this.detach();
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
    if (this.upstream?.writableFinished !== false) return;
    this.binding.uploads.delete(this);
    const body = this.request.body;
    if (body !== null) body.unpipe(this.stream!);
    this.upstream.destroy();
  }

  private clearPoolTimer(): void {
    if (this.poolTimer !== null) {
      clearTimeout(this.poolTimer);
      this.poolTimer = null;
    }
  }

  /** Stops piping the request body into this attempt and destroys its got stream. */
  private detach(): void {
    const body = this.request.body;
    const stream = this.stream;
    if (stream === null) return;
    if (body !== null) body.unpipe(stream);
    stream.removeListener('error', onGotError).on('error', ignoreError);
    stream.removeListener('response', onGotResponse);
    stream.removeListener('request', onGotRequest);
    const upstream = this.upstream;
    if (upstream !== null) {
      upstream.removeListener('timeout', onUpstreamTimeout);
      upstream.removeListener('socket', onUpstreamSocket);
      upstream.removeListener('finish', onUpstreamFinish);
      upstream.removeListener('close', onUpstreamClose);
      upstream.removeListener('error', onUpstreamError).on('error', ignoreError);
    }
    stream.destroy();
  }
}


function onGotRequest(this: TaggedStream, upstream: ClientRequest): void {
  this[kAttempt]!.onRequest(upstream);
}

function onGotResponse(this: TaggedStream, response: IncomingMessage): void {
  this[kAttempt]!.onResponse(response);
}

function onGotError(this: TaggedStream, error: Error): void {
  this[kAttempt]!.onError(error);
}

function onUpstreamSocket(this: TaggedRequest, socket: Socket): void {
  this[kAttempt]!.onSocket(socket);
}

function onUpstreamFinish(this: TaggedRequest): void {
  this[kAttempt]!.onFinish();
}

function onUpstreamTimeout(this: TaggedRequest): void {
  this[kAttempt]!.onTimeout();
}

function settleHead(attempt: GotAttempt, response: IncomingMessage): void {
  attempt.settleHead(response);
}

function onUpstreamError(this: TaggedRequest, error: Error): void {
  this[kAttempt]!.onUpstreamError(error);
}

function onUpstreamClose(this: TaggedRequest): void {
  this[kAttempt]!.onUpstreamClose();
}

function onEarlyResponseEnd(attempt: GotAttempt): void {
  attempt.onEarlyResponseEnd();
}

function onPoolTimeout(attempt: GotAttempt): void {
  attempt.onPoolTimeout();
}

function onBodyError(this: TaggedBody, error: Error): void {
  const attempt = this[kAttempt];
  if (attempt !== undefined) attempt.abortWith(bodyFailure(this, attempt.request, error));
}
