/**
 * One token-bucket policy: `burst` tokens at most, refilled at `points` per `duration` ms.
 * A request takes one token; with none left it is refused until the next one arrives.
 */
export interface BucketPolicy {
  /** The limit's name: the policy name in the `RateLimit` headers and part of every store key. */
  readonly name: string;
  /** Tokens added per `duration`: the sustained rate. */
  readonly points: number;
  /** The refill period in milliseconds. */
  readonly duration: number;
  /** The bucket's capacity: how many requests may come at once after a quiet spell. */
  readonly burst: number;
}

/** What a store says about one request. */
export interface Decision {
  /** True when a token was taken: the request may go on. */
  allowed: boolean;
  /** Tokens left after this request (0 when refused). */
  remaining: number;
  /** Milliseconds until a token is available again: 0 when allowed. */
  retryAfterMs: number;
  /** Milliseconds until the bucket is full again (the quota "resets"). */
  resetMs: number;
  /**
   * When the bucket is full again after this decision, on the store's own clock (its `tat`): what
   * `refund` needs to give back only what this request still owes. Set by the built-in stores.
   */
  tat?: number;
  /** Which incarnation of the key's entry the token came from (the memory store): a refund for an entry forgotten since is ignored. */
  generation?: number;
}

/** A store's bucket set for one policy: takes a token for a key, atomically, and gives it back. */
export interface Bucket {
  /** Takes one token for `key`; the memory store answers at once, shared stores with a promise. */
  take(key: string): Decision | Promise<Decision>;
  /**
   * Gives back the token `take` took for `key`, atomically, given the allowed `decision` that take
   * returned: the bucket is as if that request had never come (a request a later limit refused is
   * not charged, as nginx's several `limit_req`). Only what the request still owes comes back (its
   * token refilled since, or its key forgotten, nothing), never a token another request took.
   * Called only for a request let through whose pipeline then refused it. A store without it
   * keeps the token spent.
   */
  refund?(key: string, decision: Decision): void | Promise<void>;
}

/**
 * Where token buckets live: `memoryStore()` (one process, the default) or `redisStore()` from
 * `@relay/limits/redis` (shared by every gateway instance).
 */
export interface LimitStore {
  /** A short name for logs (`memory`, `redis`). */
  readonly kind: string;
  /** The buckets of one policy; called once per stage, when the relay is built. */
  bind(policy: BucketPolicy): Bucket;
}

/** How far (ms) float rounding may carry a request past the bucket's edge and still count as inside. */
const epsilon = 1e-6;

/**
 * The token-bucket step as GCRA (the generic cell rate algorithm): one number per key, the time
 * `tat` at which the bucket would be full again. Takes a token at `now` and returns the decision
 * and the new `tat` (unchanged when refused). The Redis store runs the same step in Lua.
 *
 * @example
 * const policy = { name: 'api', points: 10, duration: 1000, burst: 10 };
 * const { decision, tat } = takeToken(policy, 0, performance.now());
 */
export function takeToken(policy: BucketPolicy, tat: number, now: number): { decision: Decision; tat: number } {
  const interval = policy.duration / policy.points;
  const capacity = interval * policy.burst;
  // Measured from now (not as absolute times) so a fresh bucket's numbers carry no float noise.
  const waiting = tat > now ? tat - now : 0;
  const ahead = waiting + interval;
  if (ahead > capacity + epsilon) {
    return { decision: { allowed: false, remaining: 0, retryAfterMs: ahead - capacity, resetMs: waiting, tat, generation: 0 }, tat };
  }
  const remaining = Math.floor((capacity - ahead) / interval + epsilon);
  const taken = now + ahead;
  // `generation` present from the start (0: none): the memory store sets it without changing the object's shape.
  return { decision: { allowed: true, remaining, retryAfterMs: 0, resetMs: ahead, tat: taken, generation: 0 }, tat: taken };
}

/**
 * The inverse of an allowed `takeToken`: the bucket's `tat` with that token given back, or `null`
 * when the bucket is then full at `now` and the key can be forgotten. `takenTat` is the `tat` right
 * after that take: only what it still owes at `now` comes back (one interval at most, nothing once
 * the refill has passed it), so a token the bucket refilled since and another request took stays
 * taken. Returns `tat` itself when nothing is owed. The Redis store runs the same step in Lua.
 *
 * @example
 * const restored = refundToken(policy, tat, decision.tat!, performance.now());
 */
export function refundToken(policy: BucketPolicy, tat: number, takenTat: number, now: number): number | null {
  const owed = Math.min(policy.duration / policy.points, takenTat - now);
  if (!(owed > 0)) return tat;
  const restored = tat - owed;
  return restored > now ? restored : null;
}
