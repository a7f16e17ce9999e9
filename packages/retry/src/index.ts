export { backoffDelay, type Backoff } from './backoff.js';
export { defaultErrors, defaultStatuses, idempotentMethods, parseRetryAfter, RetryPolicy, waitTooLong, type PolicyOptions } from './policy.js';
export { ReplayStream } from './replay.js';
export { retry } from './retry.js';
export type { RetryOptions, RetryOutcome } from './retry-rules.js';
export { retryPolicy, type RetryPolicyFunctions } from './retry-policy.js';
export { withRetry, type RetryAttempt, type WithRetryOptions } from './with-retry.js';
