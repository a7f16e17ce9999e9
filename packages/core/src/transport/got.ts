import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';
import { got, RequestError, TimeoutError, type Delays, type Got, type Hooks, type OptionsInit, type Request as GotStream } from 'got';
import { RelayError, toRelayError } from '../errors.js';
import { assertKnownKeys } from '../known-keys.js';
import type { BoundTransport, ProxyRequest, ProxyResponse, Target, Transport, TransportConfig } from '../types.js';
import { Agents, createAgent, notSendable, poolOptionNames, resolvePool, type Pool, type PoolOptions } from './agent.js';
import { Attempt, Phase, onBodyError, type AttemptHost, type TaggedBody } from './attempt.js';
import { kAttempt } from '../tags.js';
import {
  clientLimitNames,
  closedWithoutAnswer,
  headStatus,
  ignoreError,
  rearmRequestTimeout,
  resolveClientLimits,
  UploadWatch,
  type ClientLimitOptions,
  type ClientLimits,
} from './attempt-rules.js';

/** Options of the got transport. */
export interface GotTransportOptions extends PoolOptions, ClientLimitOptions {
  /**
   * got hooks: `init`, `beforeRequest` (sign a request, add a header) and `beforeError` run
   * for every request. `beforeRedirect`, `beforeRetry`, `beforeCache` and `afterResponse`
   * never run here (no redirects, retries, cache or promise API) and are refused.
   */
  hooks?: Pick<Partial<Hooks>, 'init' | 'beforeRequest' | 'beforeError'>;
  /** got's DNS cache: `true` for got's shared `CacheableLookup`, or your own instance. Default none. */
  dnsCache?: OptionsInit['dnsCache'];
}

const gotTransportOptionNames: readonly string[] = [...poolOptionNames, ...clientLimitNames, 'hooks', 'dnsCache'];
const usableHooks = new Set(['init', 'beforeRequest', 'beforeError']);
/** got 14's other hooks: accepted by got, never run by this transport. */
const gotHookNames = new Set(['beforeRedirect', 'beforeRetry', 'beforeCache', 'afterResponse']);

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
  const pool = resolvePool(options);
  const hooks = checkHooks(options.hooks);
  const limits = resolveClientLimits(options);
  const dnsCache = options.dnsCache;
  if (dnsCache !== undefined && typeof dnsCache !== 'boolean' && typeof (dnsCache as { lookup?: unknown } | null)?.lookup !== 'function') {
    throw new TypeError('dnsCache must be true, false or a CacheableLookup instance');
  }
  return {
    kind: 'http',
    name: 'got',
    bind(config: TransportConfig): BoundTransport {
      return new GotBinding(config, pool, hooks, dnsCache, limits);
    },
  };
}

function checkHooks(hooks: GotTransportOptions['hooks']): Partial<Hooks> | undefined {
  if (hooks === undefined) return undefined;
  if (hooks === null || typeof hooks !== 'object') throw new TypeError('hooks must be an object of got hook arrays');
  for (const [name, list] of Object.entries(hooks)) {
    // A misspelled hook (`beforeRequst`) is named as such; a real got hook that never runs here says why.
    if (!usableHooks.has(name) && !gotHookNames.has(name)) assertKnownKeys(hooks, [...usableHooks], 'gotTransport: hooks');
    if (!usableHooks.has(name)) {
      throw new TypeError(`hooks.${name} never runs in gotTransport (no redirects, retries, cache or promise API); use init, beforeRequest or beforeError`);
    }
    if (!Array.isArray(list) || !list.every((hook) => typeof hook === 'function')) throw new TypeError(`hooks.${name} must be an array of functions`);
  }
  return hooks as Partial<Hooks>;
}


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

const connectEvents = new Set(['lookup', 'connect', 'secureConnect']);

class GotBinding implements BoundTransport, AttemptHost {
  readonly handle: (request: ProxyRequest) => Promise<ProxyResponse>;
  readonly logsFailures = true;
  readonly connectEvent: 'connect' | 'secureConnect';
  agents: Agents | null = null;
  client: Got | null = null;
  readonly uploads: UploadWatch;

  constructor(
    readonly config: TransportConfig,
    private readonly pool: Pool,
    private readonly hooks: Partial<Hooks> | undefined,
    private readonly dnsCache: OptionsInit['dnsCache'],
    readonly limits: Readonly<ClientLimits>,
  ) {
    this.uploads = new UploadWatch(limits.minUploadRate, () => this.agents?.main ?? null);
    this.connectEvent = config.target.protocol === 'https:' ? 'secureConnect' : 'connect';
    this.handle = (request) => this.forward(request);
  }

  startup(): void {
    if (this.client !== null) return;
    const agent = createAgent(this.config, this.pool);
    this.client = got.extend(this.gotOptions(agent));
    this.agents = new Agents(agent, this.config.target, (target) => createAgent(this.config, this.pool, target));
  }

  /** got with everything a proxy must not do turned off, the relay's timeouts and TLS, and the user's hooks. */
  private gotOptions(agent: Agent): OptionsInit {
    const { target, timeouts, tls } = this.config;
    const delays: Partial<Delays> = {};
    if (timeouts.connect > 0) delays.lookup = delays.connect = delays.secureConnect = timeouts.connect;
    if (timeouts.read > 0) delays.response = timeouts.read;
    return {
      prefixUrl: '',
      agent: target.protocol === 'https:' ? { https: agent as NonNullable<NonNullable<OptionsInit['agent']>['https']> } : { http: agent },
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
      // Only targets the relay was given become unix: URLs (a client's path never does).
      enableUnixSockets: true,
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
    };
  }

  shutdown(): void {
    this.uploads.stop();
    this.agents?.destroy();
    this.agents = null;
    this.client = null;
  }

  forward(request: ProxyRequest): Promise<ProxyResponse> {
    const refused = notSendable(this.client !== null, request);
    if (refused !== null) return Promise.reject(refused);
    return new Promise<ProxyResponse>((resolve, reject) => {
      const agents = this.agents!;
      new GotAttempt(this, request.target === undefined ? agents.main : agents.for(request.target), request, resolve, reject).send();
    });
  }
}

/**
 * The got adapter: got makes the node:http request (hooks, DNS cache) and hands the body on as
 * its own stream; got times the connect phases and the wait for the head, the attempt the rest.
 */
class GotAttempt extends Attempt {
  declare readonly host: GotBinding;
  stream: GotStream | null = null;
  /** A failure of the node:http request got made, which got may report late or never. */
  upstreamError: Error | null = null;
  /** The body of a complete response got will not deliver (bytes followed it: `takeWholeBody`). */
  wholeBody: Readable | null = null;
  /** The error a `beforeError` hook made of got's, while `onError` handles got's own. */
  hookError: Error | null = null;
  // got's own events are a cold path next to node:http's (got costs ~3× the CPU): plain closures.
  private readonly onGotRequest = (upstream: ClientRequest): void => this.onRequest(upstream);
  private readonly onGotResponse = (response: IncomingMessage): void => this.onResponse(response);
  private readonly onGotError = (error: Error): void => this.onError(error);
  private readonly onUpstreamTimeout = (): void => this.onTimeout();
  private readonly onUpstreamError = (error: Error): void => {
    this.upstreamError ??= error;
  };

  send(): void {
    const request = this.request;
    this.upstreamError = null;
    const stream = this.host.client!.stream(urlOf(this.target, request.path), this.requestOptions());
    const url = stream.options?.url;
    if (url instanceof URL) rawPaths.set(url, request.path);
    this.stream = stream;
    stream.on('request', this.onGotRequest);
    stream.on('response', this.onGotResponse);
    stream.on('error', this.onGotError);
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
    // Else piped once connected (`onConnected`): a failed connection leaves it unread, for a retry.
    if (request.bodyRead !== 'connected') this.pipeBody(body);
  }

  /** got's options for this attempt: another target than the relay's brings its own pool. */
  private requestOptions(): OptionsInit & { isStream?: true } {
    const options: OptionsInit & { isStream?: true } = { method: this.request.method as OptionsInit['method'], headers: this.upstreamHeaders() as Record<string, string | string[]> };
    if (this.target !== this.host.config.target) options.agent = this.target.protocol === 'https:' ? { https: this.agent as HttpsAgent } : { http: this.agent };
    return options;
  }

  /** got made the node:http request: watch it like any other. */
  onRequest(upstream: ClientRequest): void {
    // A body without a length is sent chunked, whatever the method: never reframed as something else.
    if (this.request.body !== null && this.request.headers['content-length'] === undefined) upstream.useChunkedEncodingByDefault = true;
    this.attach(upstream);
    upstream.on('timeout', this.onUpstreamTimeout);
    upstream.on('error', this.onUpstreamError);
  }

  override settleHead(): void {
    const failure = this.upstreamError;
    if (!this.settled && failure !== null) {
      // Bytes after a whole response, in the same read: node:http kept the response and closed
      // the connection, got stopped reading and fails its stream. The response stands, as with
      // httpTransport (the failure is logged when got's stream reports it, in `onError`).
      if (this.takeWholeBody()) {
        super.settleHead();
        return;
      }
      // A malformed first chunk, or a body nobody can replay: nothing of it can reach the client.
      this.fail(this.toRelayError(failure));
      return;
    }
    super.settleHead();
  }

  /**
   * Takes the body of a complete response out of node's buffer, where got left it when it stopped
   * reading; false when the response is not complete, or part of its body was read already.
   */
  private takeWholeBody(): boolean {
    const response = this.response!;
    if (!response.complete || response.readableDidRead) return false;
    const chunks: Buffer[] = [];
    for (let chunk: Buffer | null = response.read(); chunk !== null; chunk = response.read()) chunks.push(chunk);
    this.wholeBody = Readable.from(chunks, { objectMode: false });
    return true;
  }

  /**
   * The node:http request closed. got reports every other failure on its stream, but nothing
   * when the upstream answered `101` with `Upgrade` to a plain request (Node only closes the connection).
   */
  override onClose(): void {
    if (this.settled || headStatus(this.upstream!) !== 101) return;
    this.fail(closedWithoutAnswer(101));
  }

  /**
   * got's stream failed. A `beforeError` hook may have wrapped, renamed or replaced got's error: the
   * attempt reads got's own (whether to resend on a fresh connection, which code), and the
   * RelayError keeps the hook's as its cause (and its message, when the hook changed it).
   */
  override onError(error: Error): void {
    const reported = reportedByGot(error, this.upstreamError);
    this.hookError = reported === error ? null : error;
    super.onError(reported);
  }

  protected override toRelayError(error: Error): RelayError {
    const mapped = this.classify(error);
    const hooked = this.hookError;
    // Not made from `error` (a RelayError the error carried): it stands as it is.
    if (hooked === null || mapped.cause !== error) return mapped;
    return new RelayError(mapped.code, hooked.message === error.message ? mapped.message : hooked.message, { cause: hooked });
  }

  /** got's timeouts name their phase (`event`): a connect phase or the wait for the head. */
  private classify(error: Error): RelayError {
    const event = timeoutEvent(error);
    if (event !== undefined) {
      const timeouts = this.host.config.timeouts;
      if (connectEvents.has(event)) {
        return new RelayError('ERR_CONNECT_TIMEOUT', `upstream connect timed out after ${timeouts.connect} ms (${event})`, { cause: error });
      }
      if (event === 'response') return new RelayError('ERR_READ_TIMEOUT', `upstream read timed out after ${timeouts.read} ms`, { cause: error });
    }
    return toRelayError(error);
  }

  /** got times the connect phases and the wait for the head; the attempt times writes and body reads. */
  protected enter(phase: Phase): void {
    const { write, read } = this.host.config.timeouts;
    if (phase === Phase.Write && write > 0) this.upstream!.setTimeout(write);
    else if (phase === Phase.Read && write > 0) this.upstream!.setTimeout(0);
    else if (phase === Phase.Streaming && read > 0) this.upstream?.setTimeout(this.idleLimit);
  }

  protected rearm(ms: number): void {
    rearmRequestTimeout(this.upstream!, ms);
  }

  protected bodyOf(): Readable {
    if (this.wholeBody !== null) return this.wholeBody;
    const stream = this.stream!;
    // got builds its stream with `autoDestroy: false`: it ends, but never closes by itself, and what
    // waits for a body's 'close' (a pool's in-flight count, an access line) would wait for good.
    stream.once('end', destroyOnEnd);
    return stream;
  }

  protected bodySink(): NodeJS.WritableStream {
    return this.stream!;
  }

  protected reusedSocket(): boolean {
    return this.stream!.reusedSocket === true;
  }

  /** Stops piping the request body into this attempt and destroys its got stream (and so its request). */
  protected release(): void {
    const stream = this.stream;
    if (stream === null) return;
    this.request.body?.unpipe(stream);
    stream.removeListener('error', this.onGotError).on('error', ignoreError);
    stream.removeListener('response', this.onGotResponse);
    stream.removeListener('request', this.onGotRequest);
    const upstream = this.upstream;
    if (upstream !== null) {
      this.detachUpstream();
      upstream.removeListener('timeout', this.onUpstreamTimeout);
      upstream.removeListener('error', this.onUpstreamError);
    }
    stream.destroy();
  }
}

/**
 * The error got reported before the `beforeError` hooks ran: got's own `RequestError` (or a
 * RelayError) in the cause chain of what the hooks returned, else the node:http request's failure,
 * else the error itself (a hook's error with no link to got's, for a failure got made itself).
 */
function reportedByGot(error: Error, upstreamError: Error | null): Error {
  let current: unknown = error;
  // Bounded: a cause chain may be a cycle.
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    if (current instanceof RequestError || current instanceof RelayError) return current;
    current = current.cause;
  }
  return upstreamError ?? error;
}

/**
 * The phase a got timeout names, whatever a hook renamed it to: got's `TimeoutError`, or the
 * error got's timer destroys the node:http request with (code `ETIMEDOUT` and an `event`).
 */
function timeoutEvent(error: Error): string | undefined {
  if (error instanceof TimeoutError) return error.event;
  const { code, event } = error as { code?: unknown; event?: unknown };
  return code === 'ETIMEDOUT' && typeof event === 'string' ? event : undefined;
}

/** got's URL for a target: `http://unix:/path.sock:/request` for a unix: one (got's own form). */
function urlOf(target: Target, path: string): string {
  return target.socketPath === undefined ? target.origin + path : `http://unix:${target.socketPath}:${path}`;
}

/** The got stream was read to its end: closed now, as node's own response closes (its request is done). */
function destroyOnEnd(this: Readable): void {
  this.destroy();
}
