export { concurrencyLimit, type ConcurrencyLimitOptions } from './concurrency.js';
export { appendRateLimitHeaders, policyItem, rateLimitItem, retryAfterSeconds } from './headers.js';
export { addressKey, compileKey, type KeyOf, type KeySource } from './keys.js';
export { createLimiter, type Limiter, type LimiterOptions } from './limiter.js';
export { memoryStore, type MemoryStoreOptions } from './memory-store.js';
export { rateLimit, type RateLimitOptions } from './rate-limit.js';
export { refundToken, takeToken, type Bucket, type BucketPolicy, type Decision, type LimitStore } from './store.js';
export { Slot, SlotTable } from './slots.js';
