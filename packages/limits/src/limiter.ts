import { policyItem, rateLimitItem, retryAfterSeconds } from './headers.js';
import { memoryStore } from './memory-store.js';
import { assertKnownKeys, assertOptionsObject, assertPositive, assertPositiveInteger, readName } from './options.js';
import type { BucketPolicy, Decision, LimitStore } from './store.js';

/** Options of `createLimiter()`: a rate limit's policy and store, without a relay. */
export interface LimiterOptions {
  /** Tokens added per `duration`. Required. */
  points: number;
  /** The refill period in milliseconds. Required. */
  duration: number;
  /** The bucket's capacity. Default `points`. */
  burst?: number;
  /** The policy name (headers, store keys). Default `'default'`. */
  name?: string;
  /** Where the buckets live. Default a `memoryStore()` of its own. */
  store?: LimitStore;
}

/** A rate limit usable anywhere: a queue consumer, a login form, another framework. */
export interface Limiter {
  readonly policy: BucketPolicy;
  /** Takes a token for `key` and says whether the caller may go on. Rejects when the store fails. */
  consume(key: string): Promise<Decision>;
  /** The `RateLimit`, `RateLimit-Policy` and (when refused) `Retry-After` header values for a decision. */
  headers(decision: Decision): Record<string, string>;
}

const optionNames = ['points', 'duration', 'burst', 'name', 'store'];

/** @internal Reads `points`, `duration`, `burst` and `name` into a policy; throws naming the option. */
export function readPolicy(options: Record<string, unknown>, owner: string): BucketPolicy {
  const { points, duration } = options;
  assertPositiveInteger(points, `${owner}: points`);
  assertPositive(duration, `${owner}: duration`);
  const burst = options.burst ?? points;
  assertPositiveInteger(burst, `${owner}: burst`);
  return Object.freeze({ name: readName(options.name, `${owner}: name`, 'default'), points, duration, burst });
}

/** @internal Reads the `store` option: a `LimitStore`, or a fresh `memoryStore()` when absent. */
export function readStore(value: unknown, owner: string): LimitStore {
  if (value === undefined) return memoryStore();
  if (value === null || typeof value !== 'object' || typeof (value as LimitStore).bind !== 'function') {
    throw new TypeError(`${owner}: store must be a LimitStore (memoryStore() or redisStore())`);
  }
  return value as LimitStore;
}

/**
 * The decision of `rateLimit()` as a plain function: the same token bucket and stores, no relay.
 *
 * @example
 * const logins = createLimiter({ name: 'login', points: 5, duration: 60_000 });
 * const decision = await logins.consume(`user:${username}`);
 * if (!decision.allowed) return reply(429, logins.headers(decision));
 */
export function createLimiter(options: LimiterOptions): Limiter {
  assertOptionsObject(options, 'createLimiter');
  assertKnownKeys(options, optionNames, 'createLimiter');
  const policy = readPolicy(options, 'createLimiter');
  const bucket = readStore(options.store, 'createLimiter').bind(policy);
  const item = policyItem(policy);
  return {
    policy,
    consume: async (key) => {
      if (typeof key !== 'string') throw new TypeError('limiter.consume(key): key must be a string');
      return bucket.take(key);
    },
    headers: (decision) => {
      const headers: Record<string, string> = { 'ratelimit-policy': item, ratelimit: rateLimitItem(policy.name, decision) };
      if (!decision.allowed) headers['retry-after'] = retryAfterSeconds(decision);
      return headers;
    },
  };
}
