// The Quick Start of README.md and docs/quick-start.md. quick-start.test.ts runs each function
// against a real upstream on 127.0.0.1 (port 0 instead of 8080).
import http from 'node:http';
import { createRelay } from '@relay/core';

export async function startGateway(authService = 'http://auth-service:8000', port = 8080) {
  const auth = createRelay({
    targetBaseUrl: authService,
    mountPath: '/auth',        // stripped before forwarding
    upstreamPrefix: '/',       // joined in front of the rest
    preserveHost: false,       // Host is the upstream's own
    timeout: { connect: 5_000, read: 30_000 },
  });

  await auth.startup();        // optional: starts it now, so errors surface before listening
  const server = http.createServer(auth.handle).listen(port);

  // GET  /auth/login    → GET  http://auth-service:8000/login
  // POST /auth/register → POST http://auth-service:8000/register

  async function stop() {
    server.close();
    await auth.shutdown();     // drains in-flight requests, then closes upstream connections
  }
  process.once('SIGTERM', stop);
  return { server, auth, stop };
}

export function quickStart(authService = 'http://auth-service:8000', port = 8080) {
  const relay = createRelay({ targetBaseUrl: authService, mountPath: '/auth' });
  return http.createServer(relay.handle).listen(port);
}

// The other blocks of docs/quick-start.md; imports may follow code in a module (they are hoisted).
import type { Relay } from '@relay/core';
import { retry } from '@relay/retry';

export function minimalProxy(upstream = 'http://upstream-service:8000'): Relay {
  return createRelay({
    targetBaseUrl: upstream,
  });
}

export function proxyWithOptions(authService = 'http://auth-service:8000'): Relay {
  return createRelay({
    targetBaseUrl: authService,
    mountPath: '/auth',
    upstreamPrefix: '/api/v1',                       // prepended to the upstream path
    preserveHost: false,                             // use the upstream's host
    stages: [retry({ maxRetries: 2, backoffFactor: 200 })], // retry failed GETs: wait 200, then 400 ms
  });
}
