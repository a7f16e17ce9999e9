// docs/retries.md: retries with @relay/retry and the core's timeouts. retries.test.ts runs each
// relay here against real upstreams that fail, stall and recover.
import { createRelay, type Relay } from '@relay/core';
import { retry } from '@relay/retry';

export function withRetries(upstream = 'http://upstream:8000'): Relay {
  return createRelay({
    targetBaseUrl: upstream,
    stages: [
      retry({
        maxRetries: 3,
        backoffFactor: 500,               // ms: waits 500, 1000, 2000
        statuses: [502, 503, 504],
        errors: ['ERR_UPSTREAM_UNREACHABLE', 'ERR_CONNECT_TIMEOUT', 'ERR_READ_TIMEOUT'],
      }),
    ],
  });
}

export function withTimeouts(upstream = 'http://upstream:8000'): Relay {
  return createRelay({
    targetBaseUrl: upstream,
    timeout: { connect: 5_000, read: 30_000, write: 30_000, pool: 10_000 }, // ms; one number sets all four
  });
}

export function withDeadline(upstream = 'http://upstream:8000'): Relay {
  return createRelay({
    targetBaseUrl: upstream,
    timeout: { connect: 1_000, read: 5_000 },                          // each attempt
    stages: [retry({ maxRetries: 2, jitter: true, deadline: 8_000 })], // all attempts and waits together
  });
}

export function retryingPosts(upstream = 'http://upstream:8000'): Relay {
  // Only when the upstream makes POST safe to repeat, e.g. with an Idempotency-Key header
  return createRelay({
    targetBaseUrl: upstream,
    stages: [retry({ maxRetries: 2, methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'POST'] })],
  });
}
