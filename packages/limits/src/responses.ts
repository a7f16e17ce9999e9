import { Readable } from 'node:stream';
import type { ProxyResponse } from '@relay/core';

const tooManyBody = Buffer.from('429 Too Many Requests: the rate limit is exceeded, retry later (ERR_RATE_LIMITED)\n');
const busyBody = Buffer.from('429 Too Many Requests: too many requests in progress, retry later (ERR_CONCURRENCY_LIMITED)\n');
const unavailableBody = Buffer.from('503 Service Unavailable: the rate limit cannot be checked, retry later (ERR_LIMIT_STORE)\n');

function plain(status: number, body: Buffer, retryAfter: string): ProxyResponse {
  return {
    status,
    statusMessage: '',
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(body.length),
      'cache-control': 'no-store',
      'retry-after': retryAfter,
    },
    body: Readable.from([body]),
  };
}

/** 429 for a request over its rate limit, with `Retry-After` in seconds. */
export function tooManyRequests(retryAfter: string): ProxyResponse {
  return plain(429, tooManyBody, retryAfter);
}

/** 429 for a request over its concurrency limit. */
export function tooManyInFlight(): ProxyResponse {
  return plain(429, busyBody, '1');
}

/** 503 when the store cannot be asked and the limit fails closed. */
export function storeUnavailable(): ProxyResponse {
  return plain(503, unavailableBody, '1');
}
