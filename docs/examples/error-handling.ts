// docs/error-handling.md: what clients see when something fails, and how to answer errors your
// own way. error-handling.test.ts produces every failure the page shows with real sockets.
import { createRelay, type Relay } from '@relay/core';
import { retry } from '@relay/retry';

export function apiRelay(apiService = 'http://api:8000'): Relay {
  return createRelay({
    targetBaseUrl: apiService,
    mountPath: '/api',
    timeout: { connect: 2_000, read: 10_000 },
    stages: [retry({ maxRetries: 2 })], // 502/503/504 and connection failures, GET and friends only
  });
  // upstream down           → 502 Bad Gateway: the upstream service is unreachable (ERR_UPSTREAM_UNREACHABLE)
  // no answer within 10 s   → 504 Gateway Timeout: the upstream service did not answer in time (ERR_READ_TIMEOUT)
  // 503 three times         → the upstream's own 503, status, headers and body as it sent them
  // GET /api/../admin       → 400 Bad Request (ERR_BAD_PATH), upstream never contacted
}

// Each block of docs/error-handling.md shows its own imports (imports are hoisted, wherever they stand).
import { Readable } from 'node:stream';
import { toRelayError, type Stage } from '@relay/core';

/** Answers 503 with a JSON body and Retry-After while the upstream is unreachable, instead of the relay's 502. */
export function maintenanceFallback(retryAfterSeconds = 30): Stage {
  const body = JSON.stringify({ error: 'maintenance', retryAfter: retryAfterSeconds });
  return {
    name: 'maintenance-fallback',
    wrap: (next) =>
      async function maintenanceFallbackStage(request) {
        try {
          return await next(request);
        } catch (error) {
          const relayError = toRelayError(error);
          if (relayError.status !== 502) throw relayError; // timeouts, bad paths, client aborts: as usual
          return {
            status: 503,
            statusMessage: '',
            headers: {
              'content-type': 'application/json',
              'content-length': String(Buffer.byteLength(body)),
              'retry-after': String(retryAfterSeconds),
            },
            body: Readable.from([body]),
          };
        }
      },
  };
}

export function optionErrors(): string[] {
  const messages: string[] = [];
  for (const build of [
    () => createRelay({ targetBaseUrl: 'ftp://files.internal' }),
    () => createRelay({ targetBaseUrl: 'http://api:8000', upstreamPrefix: 'v1' }),
    () => retry({ maxRetries: -1 }),
  ]) {
    try {
      build();
    } catch (error) {
      messages.push(`${(error as Error).name}: ${(error as Error).message}`);
    }
  }
  return messages;
  // TypeError: targetBaseUrl must use http: or https: (WebSocket relays derive ws:/wss: from it), got "ftp:"
  // TypeError: upstreamPrefix must start with "/", got "v1"
  // RangeError: maxRetries must be a whole number ≥ 0, got -1
}
