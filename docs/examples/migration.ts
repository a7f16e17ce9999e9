// docs/migration.md: a Python Relay(...) with every parameter of the guide, in TypeScript.
// migration.test.ts checks each translated parameter against a real upstream.
import express from 'express';
import { createRelay, type Logger } from '@relay/core';
import { relayLifecycle, toConnect } from '@relay/connect-adapter';
import { cookies } from '@relay/cookies';
import { headers } from '@relay/headers';
import { retry } from '@relay/retry';
import { jsonLogger } from './logging.js';

export async function migratedGateway(authService = 'http://auth:8000', port = 8080, logger: Logger = jsonLogger()) {
  const proxy = createRelay({
    targetBaseUrl: authService,                             // target_base_url
    upstreamPrefix: '/api/v1',                              // upstream_prefix
    preserveHost: false,                                    // preserve_host
    timeout: { connect: 5_000, read: 30_000, write: 30_000, pool: 10_000 }, // timeout=httpx.Timeout(5.0, …) in ms
    logger,                                                 // logger
    stages: [
      cookies({ rewriteDomain: () => '' }),                 // rewrite_set_cookie_domain=lambda _: ""
      retry({
        maxRetries: 3,                                      // max_retries
        backoffFactor: 500,                                 // retry_backoff_factor=0.5 (seconds → ms)
        statuses: [502, 503, 504],                          // retry_statuses
        errors: ['ERR_UPSTREAM_UNREACHABLE', 'ERR_READ_TIMEOUT'], // retry_exceptions=(ConnectError, ReadTimeout)
      }),
      headers({
        extraRequest: { 'X-Service': 'main-app' },          // extra_request_headers
        dropRequest: ['x-internal-token'],                  // drop_request_headers
        dropResponse: ['x-debug-info'],                     // drop_response_headers
      }),
    ],
  });

  const app = express();
  app.use('/auth', toConnect(proxy));                       // Include("/auth", app=proxy)
  const relays = relayLifecycle([proxy]);
  await relays.startup();                                   // on_startup=[proxy.startup]
  const server = app.listen(port);
  const stop = () => relays.close(server);                  // on_shutdown=[proxy.shutdown]
  process.once('SIGTERM', stop);
  return { server, stop };
}

import { inMemoryTransport } from '@relay/core';

export function migratedTestRelay(upstreamApp: express.Express) {
  return createRelay({
    targetBaseUrl: 'http://upstream',
    mountPath: '/proxy',
    transport: inMemoryTransport(upstreamApp),              // transport=httpx.ASGITransport(app=upstream_app)
  });
}
