import { textResponse, type ProxyResponse } from '@relay/core';

const overloadedBody = Buffer.from('503 Service Unavailable: the upstream is at its request limit, retry later (ERR_CIRCUIT_OPEN)\n');
const noTargetBody = Buffer.from('503 Service Unavailable: no upstream is configured (ERR_NO_TARGET)\n');

/** 503 with `Retry-After` for an attempt its target's circuit breaker refused. */
export function overloaded(retryAfter: string): ProxyResponse {
  return { ...textResponse(503, overloadedBody, { 'retry-after': retryAfter }), errorCode: 'ERR_CIRCUIT_OPEN' };
}

/** 503 when the pool has no target at all (an empty list, or DNS names that resolved to nothing). */
export function noTarget(): ProxyResponse {
  return { ...textResponse(503, noTargetBody, { 'retry-after': '1' }), errorCode: 'ERR_NO_TARGET' };
}
