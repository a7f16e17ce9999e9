import type { HeaderRecord } from '@relay/core';
import type { BucketPolicy, Decision } from './store.js';

/**
 * The `RateLimit-Policy` item of a policy (draft-ietf-httpapi-ratelimit-headers, structured-field
 * form): `"name";q=<burst>;w=<seconds>`, the quota a full bucket holds and the seconds an empty
 * one takes to fill. Built once per stage.
 *
 * @example
 * policyItem({ name: 'api', points: 100, duration: 60_000, burst: 100 }); // '"api";q=100;w=60'
 */
export function policyItem(policy: BucketPolicy): string {
  const window = Math.max(1, Math.ceil((policy.duration * policy.burst) / policy.points / 1000));
  return `"${policy.name}";q=${policy.burst};w=${window}`;
}

/**
 * The `RateLimit` item of one decision: `"name";r=<remaining>;t=<seconds until the bucket is full>`.
 *
 * @example
 * rateLimitItem('api', { allowed: true, remaining: 99, retryAfterMs: 0, resetMs: 600 }); // '"api";r=99;t=1'
 */
export function rateLimitItem(name: string, decision: Decision): string {
  return `"${name}";r=${decision.remaining};t=${Math.ceil(decision.resetMs / 1000)}`;
}

/** Seconds for `Retry-After`: at least 1, never 0 (a client would retry at once). */
export function retryAfterSeconds(decision: Decision): string {
  return String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
}

/**
 * Adds a policy's items to a response's `RateLimit` and `RateLimit-Policy` lists. An inner
 * limit's (or the upstream's) items are kept: each field is a list, one item per policy.
 *
 * @example
 * appendRateLimitHeaders(response.headers, policyItem(policy), rateLimitItem(policy.name, decision));
 */
export function appendRateLimitHeaders(headers: HeaderRecord, policy: string, item: string): void {
  headers['ratelimit-policy'] = joined(headers['ratelimit-policy'], policy);
  headers.ratelimit = joined(headers.ratelimit, item);
}

function joined(existing: string | string[] | undefined, item: string): string {
  if (existing === undefined || existing.length === 0) return item;
  return `${typeof existing === 'string' ? existing : existing.join(', ')}, ${item}`;
}
