import { request as httpRequest, type Agent, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { RelayError } from '../errors.js';
import { assertKnownKeys } from '../known-keys.js';
import type { BoundTransport, ProxyRequest, ProxyResponse, Target, Transport, TransportConfig } from '../types.js';
import { Agents, createAgent, notSendable, poolOptionNames, resolvePool, type PoolOptions } from './agent.js';
import { Attempt, Phase, onBodyError, type AttemptHost, type TaggedBody, type TaggedRequest } from './attempt.js';
import { clientLimitNames, defaultClientLimits, ignoreError, resolveClientLimits, UploadWatch, type ClientLimitOptions, type ClientLimits } from './attempt-rules.js';
import { kAttempt, kSocketAttempt } from '../tags.js';

/** Options of the default node:http/https transport. */
export interface HttpTransportOptions extends PoolOptions, ClientLimitOptions {}

const httpTransportOptionNames: readonly string[] = [...poolOptionNames, ...clientLimitNames];

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
  const pool = resolvePool(options);
  const limits = resolveClientLimits(options);
  return {
    kind: 'http',
    name: 'http',
    bind(config: TransportConfig): BoundTransport {
      const secure = config.target.protocol === 'https:';
      const targetAgent = (target: Target) => createAgent(config, pool, target);
      return new HttpBinding(config, { createAgent: () => targetAgent(config.target), targetAgent, secure, limits });
    },
  };
}

/**
 * Binds the node:http exchange machinery to an agent made by `createAgent` at startup and
 * destroyed at shutdown. For transports that only change where connections come from, such as
 * `inMemoryTransport`. Not exported from the package entry.
 */
export function bindHttpExchange(config: TransportConfig, createAgent: () => Agent): BoundTransport {
  // Plain HTTP over whatever socket the agent makes (the in-memory pair marks itself encrypted for https: targets).
  return new HttpBinding(config, { createAgent, targetAgent: null, secure: false, limits: defaultClientLimits });
}

interface BindingParts {
  createAgent: () => Agent;
  /** Makes the pool of another target (`request.target`); `null`: every attempt uses the one pool. */
  targetAgent: ((target: Target) => Agent) | null;
  /** node:https and `secureConnect`, rather than node:http and `connect`. */
  secure: boolean;
  limits: Readonly<ClientLimits>;
}

class HttpBinding implements BoundTransport, AttemptHost {
  readonly handle: (request: ProxyRequest) => Promise<ProxyResponse>;
  readonly logsFailures = true;
  agents: Agents | null = null;
  readonly send: typeof httpRequest;
  readonly connectEvent: 'connect' | 'secureConnect';
  readonly uploads: UploadWatch;

  readonly limits: Readonly<ClientLimits>;
  private readonly parts: BindingParts;

  constructor(
    readonly config: TransportConfig,
    parts: BindingParts,
  ) {
    const { secure, limits } = parts;
    this.parts = parts;
    this.limits = limits;
    this.uploads = new UploadWatch(limits.minUploadRate, () => this.agents?.main ?? null);
    this.send = secure ? httpsRequest : httpRequest;
    this.connectEvent = secure ? 'secureConnect' : 'connect';
    this.handle = (request) => this.forward(request);
  }

  startup(): void {
    this.agents ??= new Agents(this.parts.createAgent(), this.config.target, this.parts.targetAgent);
  }

  shutdown(): void {
    this.uploads.stop();
    this.agents?.destroy();
    this.agents = null;
  }

  forward(request: ProxyRequest): Promise<ProxyResponse> {
    const agents = this.agents;
    const refused = notSendable(agents !== null, request);
    if (refused !== null) return Promise.reject(refused);
    const agent = request.target === undefined ? agents!.main : agents!.for(request.target);
    return new Promise<ProxyResponse>((resolve, reject) => {
      new HttpAttempt(this, agent, request, resolve, reject).send();
    });
  }

  /** node:http or node:https for an attempt's target. */
  requestFor(target: Target): typeof httpRequest {
    if (target === this.config.target) return this.send;
    return target.protocol === 'https:' ? httpsRequest : httpRequest;
  }
}

type UpstreamSocket = Socket & { [kSocketAttempt]?: Attempt | null };

/** The node:http adapter: the request is node's own, timeouts are watched on the socket. */
class HttpAttempt extends Attempt {
  declare readonly host: HttpBinding;

  send(): void {
    const target = this.target;
    const request = this.request;
    let upstream: TaggedRequest;
    try {
      upstream = this.host.requestFor(target)({
        host: target.hostname,
        port: target.port,
        // A unix: target: node:http connects to the socket and keeps host and port for Host only.
        socketPath: target.socketPath,
        path: request.path,
        method: request.method,
        headers: this.upstreamHeaders() as Record<string, string | string[]>,
        agent: this.agent,
      });
    } catch (error) {
      // Invalid header names or values set by a stage land here, before any byte is sent.
      this.fail(new RelayError('ERR_INTERNAL', `cannot build the upstream request: ${(error as Error).message}`, { cause: error }));
      return;
    }
    this.attach(upstream);
    upstream.on('response', onUpstreamResponse);
    upstream.on('error', onUpstreamError);
    request.client.setAbortHandler(this);
    const body = request.body;
    if (body === null) {
      upstream.end();
      return;
    }
    // A body without a length is sent chunked, whatever the method: never reframed as something else.
    if (request.headers['content-length'] === undefined) upstream.useChunkedEncodingByDefault = true;
    (body as TaggedBody)[kAttempt] = this;
    body.on('error', onBodyError);
    // Else piped once connected (`onConnected`): a failed connection leaves it unread, for a retry.
    if (request.bodyRead !== 'connected') this.pipeBody(body);
  }

  override onSocket(socket: Socket): void {
    const pooled = socket as UpstreamSocket;
    // Timeouts are watched on the socket itself, with listeners added once per connection:
    // ClientRequest.setTimeout would add and remove listeners and timers on every request.
    if (pooled[kSocketAttempt] === undefined) {
      socket.on('timeout', onSocketTimeout);
      socket.on('free', onSocketFree);
    }
    pooled[kSocketAttempt] = this;
    super.onSocket(socket);
  }

  protected enter(phase: Phase): void {
    const socket = this.socket;
    if (socket === null) return;
    const timeouts = this.host.config.timeouts;
    if (phase === Phase.Connect) socket.setTimeout(timeouts.connect);
    else this.watch(phase === Phase.Write ? timeouts.write : phase === Phase.Streaming ? this.idleLimit : timeouts.read);
    // Silence alone never ends a head that trickles in: the head also has a deadline.
    if (phase === Phase.Read) this.watchHead();
  }

  /**
   * Sets the socket's inactivity timeout. A reused socket often has it already (the agent's idle
   * timeout): then nothing is re-armed, and the request write that follows restarts the clock anyway.
   */
  private watch(ms: number): void {
    const socket = this.socket!;
    if (socket.timeout !== ms) socket.setTimeout(ms);
  }

  protected rearm(ms: number): void {
    this.socket!.setTimeout(ms);
  }

  protected bodyOf(response: IncomingMessage): Readable {
    return response;
  }

  protected bodySink(): NodeJS.WritableStream {
    return this.upstream!;
  }

  protected reusedSocket(): boolean {
    return this.upstream!.reusedSocket;
  }

  protected release(): void {
    const upstream = this.upstream;
    if (upstream === null) return;
    this.request.body?.unpipe(upstream);
    this.detachUpstream();
    upstream.removeListener('error', onUpstreamError).on('error', ignoreError);
    upstream.destroy();
    this.response?.destroy();
  }
}

function onUpstreamResponse(this: TaggedRequest, response: IncomingMessage): void {
  this[kAttempt]!.onResponse(response);
}

function onUpstreamError(this: TaggedRequest, error: Error): void {
  this[kAttempt]!.onError(error);
}

function onSocketTimeout(this: UpstreamSocket): void {
  // An idle pooled socket has no attempt: the agent closes it.
  this[kSocketAttempt]?.onTimeout();
}

function onSocketFree(this: UpstreamSocket): void {
  this[kSocketAttempt] = null;
}
