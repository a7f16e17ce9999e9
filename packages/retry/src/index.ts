// @relay/retry: the `retry()` stage, and the same policy for your own calls.
export { retry } from './retry.js';
export type { RetryOptions, RetryOutcome } from './retry-rules.js';
export { retryPolicy, type RetryPolicyFunctions } from './retry-policy.js';
export { withRetry, type RetryAttempt, type WithRetryOptions } from './with-retry.js';
