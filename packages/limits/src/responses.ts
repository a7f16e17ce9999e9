import { textResponse, type ProxyResponse } from '@relay/core';

const tooManyBody = Buffer.from('429 Too Many Requests: the rate limit is exceeded, retry later (ERR_RATE_LIMITED)\n');
const busyBody = Buffer.from('429 Too Many Requests: too many requests in progress, retry later (ERR_CONCURRENCY_LIMITED)\n');
const unavailableBody = Buffer.from('503 Service Unavailable: the rate limit cannot be checked, retry later (ERR_LIMIT_STORE)\n');

/** 429 for a request over its rate limit, with `Retry-After` in seconds. */
export function tooManyRequests(retryAfter: string): ProxyResponse {
  return { ...textResponse(429, tooManyBody, { 'retry-after': retryAfter }), errorCode: 'ERR_RATE_LIMITED' };
}

/** 429 for a request over its concurrency limit. */
export function tooManyInFlight(): ProxyResponse {
  return { ...textResponse(429, busyBody, { 'retry-after': '1' }), errorCode: 'ERR_CONCURRENCY_LIMITED' };
}

/** 503 when the store cannot be asked and the limit fails closed. */
export function storeUnavailable(): ProxyResponse {
  return { ...textResponse(503, unavailableBody, { 'retry-after': '1' }), errorCode: 'ERR_LIMIT_STORE' };
}
