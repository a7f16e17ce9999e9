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

/** The buckets of one policy: key → the time its bucket is full again. */
class MemoryBucket implements Bucket {
  private readonly full = new Map<string, number>();

  constructor(
    private readonly policy: BucketPolicy,
    private readonly maxKeys: number,
  ) {}

  take(key: string): Decision {
    const now = performance.now();
    const { decision, tat } = takeToken(this.policy, this.full.get(key) ?? 0, now);
    if (decision.allowed) {
      if (this.full.size >= this.maxKeys && !this.full.has(key)) this.evict(now);
      this.full.set(key, tat);
    }
    return decision;
  }

  refund(key: string): void {
    const tat = this.full.get(key);
    // Not there: dropped as full (or never let through), so there is nothing to give back.
    if (tat === undefined) return;
    const restored = refundToken(this.policy, tat, performance.now());
    if (restored === null) this.full.delete(key);
    else this.full.set(key, restored);
  }

  /** Drops the keys whose bucket is full again; if none is, the oldest tenth. */
  private evict(now: number): void {
    for (const [key, tat] of this.full) if (tat <= now) this.full.delete(key);
    if (this.full.size < this.maxKeys) return;
    let drop = Math.max(1, Math.floor(this.maxKeys / 10));
    for (const key of this.full.keys()) {
      this.full.delete(key);
      if (--drop === 0) break;
    }
  }
}
