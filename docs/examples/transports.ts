// docs/transports.md: the got transport, the in-memory transport with an Express upstream, and a
// transport that wraps another. transports.test.ts runs each one.
import { createRelay, type Relay } from '@relay/core';
import { gotTransport } from '@relay/core/got';

export function gotRelay(authService = 'http://auth:8000', serviceToken = process.env.SERVICE_TOKEN): Relay {
  return createRelay({
    targetBaseUrl: authService,
    transport: gotTransport({
      dnsCache: true,
      hooks: {
        beforeRequest: [
          (options) => {
            options.headers['x-service-auth'] = serviceToken;
          },
        ],
      },
    }),
  });
}

// Each block of docs/transports.md shows its own imports (imports are hoisted, wherever they stand).
import express from 'express';
import { inMemoryTransport } from '@relay/core';

export function inMemoryRelay(): Relay {
  const upstream = express().get('/test', (_req, res) => {
    res.json({ message: 'Hello from upstream' });
  });
  return createRelay({ targetBaseUrl: 'http://upstream', mountPath: '/proxy', transport: inMemoryTransport(upstream) });
}

import { httpTransport } from '@relay/core';

export function tunedHttpRelay(apiService = 'http://api:8000'): Relay {
  return createRelay({
    targetBaseUrl: apiService,
    transport: httpTransport({ maxSockets: 64, maxFreeSockets: 16, idleTimeout: 15_000 }),
    timeout: { pool: 2_000 }, // a request waits at most 2 s for one of the 64 connections
  });
}

import type { Transport } from '@relay/core';

/** A transport around another: reports how long each attempt took to get its response head. */
export function timed(inner: Transport, report: (path: string, status: number, ms: number) => void): Transport {
  return {
    kind: 'http',
    name: `timed-${inner.name}`,
    bind(config) {
      const bound = inner.bind(config);
      return {
        startup: () => bound.startup(),
        shutdown: () => bound.shutdown(),
        handle: async function timedTransport(request) {
          const started = performance.now();
          const response = await bound.handle(request);
          report(request.path, response.status, performance.now() - started);
          return response;
        },
      };
    },
  };
}

import { http2Transport } from '@relay/core';

export function grpcBackendRelay(backend = 'http://grpc-backend:50051'): Relay {
  return createRelay({
    targetBaseUrl: backend, // http: is h2c (prior knowledge), https: is TLS with ALPN h2
    transport: http2Transport({ maxSessions: 2, pingInterval: 300_000 }), // gRPC servers refuse PINGs more often than every 5 min
    timeout: { pool: 1_000 }, // a request waits at most 1 s for a free stream
  });
}

export function h2OnlyRelay(apiService = 'https://api:8443', ca?: string | Buffer): Relay {
  return createRelay({
    targetBaseUrl: apiService,
    tls: { ca },
    // An upstream whose ALPN does not pick h2 is a 502 ERR_UPSTREAM_PROTOCOL, not HTTP/1.1.
    transport: http2Transport({ fallback: 'refuse' }),
  });
}

import { undiciTransport } from '@relay/core/undici';

export function undiciRelay(apiService = 'http://api:8000'): Relay {
  return createRelay({
    targetBaseUrl: apiService,
    transport: undiciTransport({ maxSockets: 128, idleTimeout: 15_000 }),
  });
}
