import cluster, { type Worker } from 'node:cluster';
import { memoryStore, type Bucket, type BucketPolicy, type Decision } from '@relay/limits';
import type { LimitStoreOf } from './generation.js';

/**
 * The rate limits of `--workers N`, counted once for the whole gateway (nginx keeps a `limit_req`
 * zone in shared memory for all its workers): the primary holds the token buckets in a memory
 * store, a worker takes a token with one IPC round trip (`relay:limit`), as `/metrics` is gathered,
 * and gives back the token of a request a limit further in refused with one message (`relay:limit-refund`).
 * rate-limiter-flexible's `RateLimiterCluster` does the same but counts in fixed windows (its
 * master is a `RateLimiterMemory`), not the token bucket one process uses, so its `burst` and
 * `RateLimit` fields would differ from a single process's.
 */
export type LimitMessage =
  | { type: 'relay:limit'; id: number; limit: string; policy: BucketPolicy; key: string }
  | { type: 'relay:limit-result'; id: number; decision?: Decision; error?: string }
  | { type: 'relay:limit-refund'; limit: string; key: string; tat?: number; generation?: number };

/**
 * How long a worker waits for the primary's decision: it runs on the same machine and does little
 * else, so a second means it is stuck; the limit's `failOpen` then decides, as for a Redis timeout.
 */
const answerTimeout = 1_000;

/** How often the primary drops the limits no worker has used for longer than their buckets take to fill. */
const sweepInterval = 60_000;

/** One request waiting for the primary's decision. */
interface Pending {
  resolve(decision: Decision): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A worker's side: the `limitStore` of `createGateway` whose buckets are the primary's. A call that
 * the primary does not answer within 1 s (or while the IPC channel is closed) rejects, and the
 * limit's `failOpen` decides, as with one process's Redis store.
 *
 * @example
 * const running = await serve({ config, logger, limitStore: workerLimitStores() });
 */
export function workerLimitStores(): LimitStoreOf {
  const pending = new Map<number, Pending>();
  let nextId = 0;
  process.on('message', (message: LimitMessage) => {
    if (message?.type !== 'relay:limit-result') return;
    const waiting = pending.get(message.id);
    if (waiting === undefined) return;
    pending.delete(message.id);
    clearTimeout(waiting.timer);
    if (message.decision !== undefined) waiting.resolve(message.decision);
    else waiting.reject(new Error(message.error ?? 'the primary gave no decision'));
  });
  function take(limit: string, policy: BucketPolicy, key: string): Promise<Decision> {
    if (!process.connected) return Promise.reject(new Error('the primary is gone'));
    const id = ++nextId;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, timer: setTimeout(onTimeout, answerTimeout, pending, id) });
      process.send!({ type: 'relay:limit', id, limit, policy, key } satisfies LimitMessage);
    });
  }
  // Only for a request a limit further in refused; no answer awaited (IPC keeps a worker's messages in order).
  // The decision's tat and generation (the primary's clock and entry) say what the request still owes.
  function refund(limit: string, key: string, decision: Decision): void {
    if (!process.connected) throw new Error('the primary is gone');
    const { tat, generation } = decision;
    process.send!({ type: 'relay:limit-refund', limit, key, tat, generation } satisfies LimitMessage);
  }
  return (limit) => ({
    kind: 'primary',
    bind: (policy): Bucket => ({ take: (key) => take(limit, policy, key), refund: (key, decision) => refund(limit, key, decision) }),
  });
}

function onTimeout(pending: Map<number, Pending>, id: number): void {
  const waiting = pending.get(id);
  pending.delete(id);
  waiting?.reject(new Error(`the primary did not answer within ${answerTimeout} ms`));
}

/** One limit's buckets in the primary, and when a worker last took from them. */
interface SharedLimit {
  readonly bucket: Bucket;
  /** Milliseconds an empty bucket takes to fill: unused for longer, every bucket is full and nothing is lost by dropping them. */
  readonly fill: number;
  used: number;
}

/**
 * The primary's side: answers the workers' `relay:limit` requests from one memory store, a bucket
 * set per limit id (route label and options, the same in every worker), bound with the policy of
 * the first request. A reload that changes a limit gives it a new id, so fresh buckets; the old
 * one is dropped once its buckets would all be full again.
 *
 * @example
 * serveClusterLimits();
 */
export function serveClusterLimits(): void {
  const store = memoryStore();
  const limits = new Map<string, SharedLimit>();
  cluster.on('message', (worker: Worker, message: LimitMessage) => {
    if (message?.type === 'relay:limit') void answer(worker, message);
    // A limit dropped since (unused longer than its buckets take to fill) is full: nothing to give back.
    else if (message?.type === 'relay:limit-refund') void limits.get(message.limit)?.bucket.refund?.(message.key, refundedDecision(message));
  });
  setInterval(sweep, sweepInterval, limits).unref();

  async function answer(worker: Worker, message: LimitMessage & { type: 'relay:limit' }): Promise<void> {
    let reply: LimitMessage;
    try {
      let limit = limits.get(message.limit);
      if (limit === undefined) {
        const { policy } = message;
        limit = { bucket: store.bind(policy), fill: (policy.duration * policy.burst) / policy.points, used: 0 };
        limits.set(message.limit, limit);
      }
      limit.used = performance.now();
      reply = { type: 'relay:limit-result', id: message.id, decision: await limit.bucket.take(message.key) };
    } catch (error) {
      reply = { type: 'relay:limit-result', id: message.id, error: (error as Error).message };
    }
    if (worker.isConnected()) worker.send(reply);
  }
}

/** The part of the primary's decision a worker sends back with a refund: enough for the memory store to tell what is owed. */
function refundedDecision(message: LimitMessage & { type: 'relay:limit-refund' }): Decision {
  const { tat, generation } = message;
  return { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 0, tat, generation };
}

function sweep(limits: Map<string, SharedLimit>): void {
  const now = performance.now();
  for (const [id, limit] of limits) if (now - limit.used > limit.fill) limits.delete(id);
}
