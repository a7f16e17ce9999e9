import { Readable } from 'node:stream';
import type { ProxyResponse } from '@relay/core';

const overloadedBody = Buffer.from('503 Service Unavailable: the upstream is at its request limit, retry later (ERR_CIRCUIT_OPEN)\n');
const noTargetBody = Buffer.from('503 Service Unavailable: no upstream is configured (ERR_NO_TARGET)\n');

function unavailable(body: Buffer, retryAfter: string): ProxyResponse {
  return {
    status: 503,
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

/** 503 with `Retry-After` for an attempt its target's circuit breaker refused. */
export function overloaded(retryAfter: string): ProxyResponse {
  return unavailable(overloadedBody, retryAfter);
}

/** 503 when the pool has no target at all (an empty list, or DNS names that resolved to nothing). */
export function noTarget(): ProxyResponse {
  return unavailable(noTargetBody, '1');
}
