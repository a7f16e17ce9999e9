import { assertKnownKeys, assertOptionsObject, assertPositiveInteger } from './options.js';
import { refundToken, takeToken, type Bucket, type BucketPolicy, type Decision, type LimitStore } from './store.js';

/** Options of `memoryStore()`. */
export interface MemoryStoreOptions {
  /**
   * Most keys kept per limit. Default 100 000. When full, keys whose bucket is full again are
   * dropped, then the oldest ones: memory stays bounded however many clients come.
   */
  maxKeys?: number;
}

const optionNames = ['maxKeys'];

/**
 * Token buckets in this process: no I/O, decisions made at once. Each gateway process counts
 * for itself; use `redisStore()` from `@relay/limits/redis` for one limit across instances.
 *
 * @example
 * rateLimit({ points: 100, duration: 60_000, store: memoryStore({ maxKeys: 50_000 }) });
 */
export function memoryStore(options: MemoryStoreOptions = {}): LimitStore {
  assertOptionsObject(options, 'memoryStore');
  assertKnownKeys(options, optionNames, 'memoryStore');
  const maxKeys = options.maxKeys ?? 100_000;
  assertPositiveInteger(maxKeys, 'memoryStore: maxKeys');
  return {
    kind: 'memory',
    bind: (policy) => new MemoryBucket(policy, maxKeys),
  };
}

/** One key's bucket: when it is full again, and which incarnation of the key it is (a refund checks it). */
interface Entry {
  tat: number;
  readonly generation: number;
}

/** The buckets of one policy: key → the time its bucket is full again. */
class MemoryBucket implements Bucket {
  private readonly full = new Map<string, Entry>();
  /** Numbers the entries: a key forgotten (evicted, or full again) and taken again is a new entry. */
  private generations = 0;

  constructor(
    private readonly policy: BucketPolicy,
    private readonly maxKeys: number,
  ) {}

  take(key: string): Decision {
    const now = performance.now();
    let entry = this.full.get(key);
    const { decision, tat } = takeToken(this.policy, entry === undefined ? 0 : entry.tat, now);
    if (!decision.allowed) return decision;
    if (entry === undefined) {
      if (this.full.size >= this.maxKeys) this.evict(now);
      entry = { tat, generation: ++this.generations };
      this.full.set(key, entry);
    } else {
      entry.tat = tat;
    }
    decision.generation = entry.generation;
    return decision;
  }

  refund(key: string, decision: Decision): void {
    const entry = this.full.get(key);
    // Gone or replaced since that take: forgotten as full (so nothing is owed) or evicted, and a
    // new entry holds only the tokens of requests that came after: none of them is this one's.
    if (entry === undefined || entry.generation !== decision.generation || decision.tat === undefined) return;
    const restored = refundToken(this.policy, entry.tat, decision.tat, performance.now());
    if (restored === null) this.full.delete(key);
    else entry.tat = restored;
  }

  /** Drops the keys whose bucket is full again; if none is, the oldest tenth. */
  private evict(now: number): void {
    for (const [key, entry] of this.full) if (entry.tat <= now) this.full.delete(key);
    if (this.full.size < this.maxKeys) return;
    let drop = Math.max(1, Math.floor(this.maxKeys / 10));
    for (const key of this.full.keys()) {
      this.full.delete(key);
      if (--drop === 0) break;
    }
  }
}
