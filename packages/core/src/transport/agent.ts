import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { HttpProxyAgent } from 'http-proxy-agent';
import { RelayError } from '../errors.js';
import { assertNonNegative } from '../options.js';
import type { ProxyRequest, Target, TransportConfig } from '../types.js';
import { TunnelAgent } from './tunnel-agent.js';

/** The keep-alive pool options every node:http-based transport takes. */
export interface PoolOptions {
  /** Most connections open to the upstream at once; more requests wait up to `timeout.pool`. Default 256. */
  maxSockets?: number;
  /** Most idle keep-alive connections kept for reuse. Default 256. */
  maxFreeSockets?: number;
  /** Close an idle keep-alive connection after this many ms (sooner if the upstream's `Keep-Alive` says so). Default 30 000. */
  idleTimeout?: number;
  /**
   * A forward proxy for the upstream connections (egress): `http://proxy:3128` (absolute-form
   * requests for `http:` targets, a `CONNECT` tunnel for `https:` ones), or `'env'` to read
   * `HTTPS_PROXY` / `HTTP_PROXY` and `NO_PROXY` as curl does. A proxy that refuses a tunnel (407,
   * 403 …) fails the attempt with 502 `ERR_UPSTREAM_UNREACHABLE`, never with the proxy's answer. Default none.
   */
  proxy?: string | URL;
}

export const poolOptionNames: readonly string[] = ['maxSockets', 'maxFreeSockets', 'idleTimeout', 'proxy'];

/** The pool options as the agents read them. */
export interface Pool {
  readonly maxSockets: number;
  readonly maxFreeSockets: number;
  readonly idleTimeout: number;
  /** The proxy for a target, or `null` for a direct connection. */
  readonly proxyFor: (target: Target) => URL | null;
}

/** Reads and checks the pool options, with their defaults. */
export function resolvePool(options: PoolOptions): Pool {
  const pool = { maxSockets: options.maxSockets ?? 256, maxFreeSockets: options.maxFreeSockets ?? 256, idleTimeout: options.idleTimeout ?? 30_000, proxyFor: resolveProxy(options.proxy) };
  if (pool.maxSockets !== Infinity) assertCount(pool.maxSockets, 'maxSockets');
  if (pool.maxSockets < 1) throw new RangeError(`maxSockets must be at least 1, got ${pool.maxSockets}`);
  assertCount(pool.maxFreeSockets, 'maxFreeSockets');
  assertNonNegative(pool.idleTimeout, 'idleTimeout');
  return pool;
}

/**
 * A keep-alive agent for `target`: node:https with the relay's TLS settings for `https:`; through
 * the forward proxy, if one applies, with the field's agents (http-proxy-agent, https-proxy-agent).
 */
export function createAgent(config: TransportConfig, pool: Pool, target: Target = config.target): HttpAgent {
  const common = { keepAlive: true, maxSockets: pool.maxSockets, maxFreeSockets: pool.maxFreeSockets, scheduling: 'lifo' as const, timeout: pool.idleTimeout };
  const secure = target.protocol === 'https:';
  const proxy = target.socketPath === undefined ? pool.proxyFor(target) : null;
  if (proxy !== null) return secure ? new TunnelAgent(proxy, common, config.tls) : new HttpProxyAgent(proxy, common);
  return secure ? new HttpsAgent({ ...common, ...config.tls }) : new HttpAgent(common);
}

/** The `proxy` option as a function of the target. */
function resolveProxy(value: unknown): (target: Target) => URL | null {
  if (value === undefined) return () => null;
  if (value === 'env') return proxyFromEnvironment;
  let url: URL;
  try {
    url = new URL(String(value));
  } catch {
    throw new TypeError(`proxy must be an http:// or https:// URL of a forward proxy, or 'env', got "${String(value)}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`proxy must be an http:// or https:// URL, got "${url.protocol}"`);
  return () => url;
}

/** `HTTPS_PROXY` / `HTTP_PROXY` (either case) for the target's scheme, unless `NO_PROXY` names its host (curl's rules, simplified). */
function proxyFromEnvironment(target: Target): URL | null {
  const env = process.env;
  const value = target.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (value === undefined || value === '' || bypassesProxy(target.hostname, env.NO_PROXY ?? env.no_proxy ?? '')) return null;
  return new URL(value);
}

function bypassesProxy(hostname: string, noProxy: string): boolean {
  return noProxy.split(',').some((entry) => {
    const name = entry.trim().replace(/^\*?\./, '').toLowerCase();
    return name === '*' || (name !== '' && (hostname === name || hostname.endsWith(`.${name}`)));
  });
}

/**
 * The keep-alive pools of one transport binding: the relay target's, made at startup, and one per
 * other target an attempt names (`request.target`), made on first use; all destroyed at shutdown.
 */
export class Agents {
  private readonly others = new Map<string, HttpAgent>();

  constructor(
    readonly main: HttpAgent,
    private readonly mainTarget: Target,
    private readonly make: ((target: Target) => HttpAgent) | null,
  ) {}

  /** The pool for `target`; a transport that cannot make others (in memory) uses its one pool. */
  for(target: Target): HttpAgent {
    if (target === this.mainTarget || this.make === null) return this.main;
    const key = target.socketPath ?? target.origin;
    let agent = this.others.get(key);
    if (agent === undefined) {
      agent = this.make(target);
      this.others.set(key, agent);
    }
    return agent;
  }

  destroy(): void {
    this.main.destroy();
    for (const agent of this.others.values()) agent.destroy();
    this.others.clear();
  }
}

/**
 * Why `request` cannot be sent now, or `null`: the transport holds no agent (not started, or
 * stopped), or the client left while earlier stages ran.
 */
export function notSendable(started: boolean, request: ProxyRequest): RelayError | null {
  if (!started) return new RelayError('ERR_NOT_STARTED', 'transport is not started: call relay.startup()');
  return request.client.abortReason;
}

/** A number of sockets: node's Agent would silently round 1.5 up. */
function assertCount(value: unknown, option: string): void {
  assertNonNegative(value, option);
  if (!Number.isInteger(value)) throw new RangeError(`${option} must be a whole number, got ${value}`);
}
