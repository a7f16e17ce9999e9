export { backoffDelay, type Backoff } from './backoff.js';
export { defaultErrors, defaultStatuses, idempotentMethods, parseRetryAfter, RetryPolicy, waitTooLong, type PolicyOptions } from './policy.js';
export { ReplayStream } from './replay.js';
export { retry, type RetryOptions } from './retry.js';
