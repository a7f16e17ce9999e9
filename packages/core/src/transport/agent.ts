import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { RelayError } from '../errors.js';
import { assertNonNegative } from '../options.js';
import type { ProxyRequest, Target, TransportConfig } from '../types.js';

/** The keep-alive pool options every node:http-based transport takes. */
export interface PoolOptions {
  /** Most connections open to the upstream at once; more requests wait up to `timeout.pool`. Default 256. */
  maxSockets?: number;
  /** Most idle keep-alive connections kept for reuse. Default 256. */
  maxFreeSockets?: number;
  /** Close an idle keep-alive connection after this many ms (sooner if the upstream's `Keep-Alive` says so). Default 30 000. */
  idleTimeout?: number;
}

export const poolOptionNames: readonly string[] = ['maxSockets', 'maxFreeSockets', 'idleTimeout'];

/** Reads and checks the pool options, with their defaults. */
export function resolvePool(options: PoolOptions): Required<PoolOptions> {
  const pool = { maxSockets: options.maxSockets ?? 256, maxFreeSockets: options.maxFreeSockets ?? 256, idleTimeout: options.idleTimeout ?? 30_000 };
  if (pool.maxSockets !== Infinity) assertNonNegative(pool.maxSockets, 'maxSockets');
  if (pool.maxSockets < 1) throw new RangeError(`maxSockets must be at least 1, got ${pool.maxSockets}`);
  assertNonNegative(pool.maxFreeSockets, 'maxFreeSockets');
  assertNonNegative(pool.idleTimeout, 'idleTimeout');
  return pool;
}

/** A keep-alive agent for `target`: node:https with the relay's TLS settings for `https:`. */
export function createAgent(config: TransportConfig, pool: Required<PoolOptions>, target: Target = config.target): HttpAgent {
  const common = { keepAlive: true, maxSockets: pool.maxSockets, maxFreeSockets: pool.maxFreeSockets, scheduling: 'lifo' as const, timeout: pool.idleTimeout };
  return target.protocol === 'https:' ? new HttpsAgent({ ...common, ...config.tls }) : new HttpAgent(common);
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
