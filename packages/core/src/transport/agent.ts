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

/** A target's pool, and whether an attempt took it since the last sweep. */
interface OtherAgent {
  readonly agent: HttpAgent;
  used: boolean;
}

/**
 * The keep-alive pools of one transport binding: the relay target's, made at startup, and one per
 * other target an attempt names (`request.target`), made on first use; all destroyed at shutdown.
 * Another target's pool is forgotten once it holds nothing (see `sweep`): targets that come and
 * go (DNS, a balance pool) do not pile up for the life of the process.
 */
export class Agents {
  private readonly others = new Map<string, OtherAgent>();
  /** Runs `sweep` while there are other targets; unref'd, it never keeps the process alive. */
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    readonly main: HttpAgent,
    private readonly mainTarget: Target,
    private readonly make: ((target: Target) => HttpAgent) | null,
  ) {}

  /** The pool for `target`; a transport that cannot make others (in memory) uses its one pool. */
  for(target: Target): HttpAgent {
    if (target === this.mainTarget || this.make === null) return this.main;
    const key = target.socketPath ?? target.origin;
    let entry = this.others.get(key);
    if (entry === undefined) {
      entry = { agent: this.make(target), used: true };
      this.others.set(key, entry);
      this.startSweeping(entry.agent);
    }
    entry.used = true;
    return entry.agent;
  }

  /** Tests and diagnostics: how many other targets have a pool. */
  get otherTargets(): number {
    return this.others.size;
  }

  destroy(): void {
    this.stopSweeping();
    this.main.destroy();
    for (const entry of this.others.values()) entry.agent.destroy();
    this.others.clear();
  }

  /**
   * Forgets each other target's pool that holds no socket (in use or idle) and no queued request,
   * and was not handed out since the last sweep: an attempt may take its pool and add its request
   * later (got makes the request after its hooks), so one quiet interval is required first. An
   * attempt that still races the removal works: the destroyed agent opens a new socket, closed
   * after `idleTimeout` like any other, and the next attempt gets a new pool.
   */
  private sweep(): void {
    for (const [key, entry] of this.others) {
      if (entry.used) entry.used = false;
      else if (isEmpty(entry.agent)) {
        this.others.delete(key);
        entry.agent.destroy();
      }
    }
    if (this.others.size === 0) this.stopSweeping();
  }

  /** Sweeps every `idleTimeout`, the time it takes an idle socket to close; O(targets) each time. */
  private startSweeping(agent: HttpAgent): void {
    if (this.sweeper !== null) return;
    this.sweeper = setInterval(() => this.sweep(), sweepInterval(agent));
    this.sweeper.unref();
  }

  private stopSweeping(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

/** Without an idle timeout sockets close only when the upstream closes them: checked at the default pace. */
const defaultSweepInterval = 30_000;
/** A tiny `idleTimeout` must not turn the sweep into a busy loop. */
const minSweepInterval = 100;

/** The agent's `idleTimeout`: node keeps the options an Agent was made with (not in its types). */
function sweepInterval(agent: HttpAgent): number {
  const timeout = (agent as HttpAgent & { options?: { timeout?: unknown } }).options?.timeout;
  const every = typeof timeout === 'number' && timeout > 0 ? timeout : defaultSweepInterval;
  return Math.max(every, minSweepInterval);
}

/** No socket in use, none idle, no request waiting for one (node deletes a name's list once empty). */
function isEmpty(agent: HttpAgent): boolean {
  return !holdsAny(agent.sockets) && !holdsAny(agent.freeSockets) && !holdsAny(agent.requests);
}

function holdsAny(lists: NodeJS.ReadOnlyDict<readonly unknown[]>): boolean {
  for (const name in lists) if ((lists[name]?.length ?? 0) > 0) return true;
  return false;
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
