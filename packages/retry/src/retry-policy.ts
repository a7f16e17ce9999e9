import { assertKnownKeys } from '@relay/core';
import { compileRetryRules, decideRetry, type RetryOptions, type RetryOutcome } from './retry-rules.js';

/** The rules of `retry()` as functions of an attempt's number and outcome. */
export interface RetryPolicyFunctions {
  /**
   * Whether attempt number `attempt` (1 for the first), which ended with `outcome`, should be
   * followed by another: a retry is left, the method may be sent again, the status or failure is
   * a retried one, and its `Retry-After` (if any) is not longer than `retryAfter` allows.
   */
  shouldRetry(attempt: number, outcome: RetryOutcome): boolean;
  /**
   * The wait in ms before the next attempt when `shouldRetry` says yes: the `Retry-After` of a
   * 429 or 503, else the backoff for retry number `attempt` (with jitter, a new random wait on
   * each call); `null` when no retry follows.
   */
  delay(attempt: number, outcome: RetryOutcome): number | null;
}

/**
 * The retry policy of `retry()` as plain synchronous functions, for a loop of your own (a queue
 * consumer, an edge function): the same options, checked here with the same errors, and the same
 * decisions the stage makes. `maxReplayBytes` and `deadline` are accepted and not used here: the
 * body and the clock are the caller's (`withRetry` keeps both).
 *
 * @example
 * const policy = retryPolicy({ maxRetries: 3, jitter: true, statuses: [429, 503] });
 * policy.shouldRetry(1, { method: 'GET', status: 503 }); // true
 * policy.shouldRetry(1, { method: 'POST', status: 503 }); // false: POST is not idempotent
 * policy.delay(1, { method: 'GET', status: 429, headers: { 'retry-after': '2' } }); // 2000
 */
export function retryPolicy(options: RetryOptions = {}): RetryPolicyFunctions {
  const rules = compileRetryRules(options, 'retryPolicy');
  return {
    shouldRetry(attempt, outcome) {
      return decideRetry(rules, checkAttempt(attempt), checkOutcome(outcome)) !== null;
    },
    delay(attempt, outcome) {
      return decideRetry(rules, checkAttempt(attempt), checkOutcome(outcome))?.delay ?? null;
    },
  };
}

function checkAttempt(attempt: number): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError(`retryPolicy: attempt must be a whole number ≥ 1 (1 for the first attempt), got ${String(attempt)}`);
  return attempt;
}

const outcomeNames: readonly string[] = ['method', 'status', 'headers', 'error'];

/**
 * The outcome of an attempt must be an object; a plain one (an object literal) must have known
 * keys only, so `{ method: 'GET', statu: 503 }` throws naming "status" rather than never retrying,
 * silently. Another object is read structurally.
 */
function checkOutcome(outcome: RetryOutcome): RetryOutcome {
  if (outcome === null || typeof outcome !== 'object') throw new TypeError('retryPolicy: the outcome must be an object: { method, status, headers, error }');
  const prototype: unknown = Object.getPrototypeOf(outcome);
  if (prototype === Object.prototype || prototype === null) assertKnownKeys(outcome, outcomeNames, 'retryPolicy: outcome');
  // Methods are compared upper-cased, as the `methods` option and withRetry's `method` are read.
  const method = outcome.method;
  return typeof method === 'string' && method !== method.toUpperCase() ? { ...outcome, method: method.toUpperCase() } : outcome;
}
