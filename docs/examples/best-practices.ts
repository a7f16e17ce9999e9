// docs/best-practices.md: a gateway set up the way the page recommends. best-practices.test.ts
// starts it from an environment, requests through it, and stops it with its own signal handler.
import http from 'node:http';
import express from 'express';
import { createRelay, gatewayServerOptions, type Relay } from '@relay/core';
import { relayLifecycle, toConnect } from '@relay/connect-adapter';
import { cookies } from '@relay/cookies';
import { headers } from '@relay/headers';
import { retry } from '@relay/retry';
import { jsonLogger } from './logging.js';

export async function productionGateway(env: NodeJS.ProcessEnv = process.env) {
  const api = createRelay({
    targetBaseUrl: env.UPSTREAM_URL ?? 'http://localhost:8000', // checked now: a typo fails at boot
    upstreamPrefix: env.UPSTREAM_PREFIX ?? '/',
    timeout: { connect: 2_000, read: 15_000 },                  // explicit, per attempt
    logger: jsonLogger(env.LOG_LEVEL === 'debug' ? 'debug' : 'info'),
    stages: [
      cookies({ rewriteDomain: () => '' }),                     // cookies bind to the public host
      retry({ maxRetries: 2, jitter: true, deadline: 20_000 }), // idempotent methods only, bounded as a whole
      headers({ dropRequest: ['x-internal-token'] }),           // what must not reach the upstream
    ],
  });

  const app = express();
  app.get('/healthz', (_req, res) => {
    res.send('ok');                                             // the load balancer's check, answered here
  });
  app.use('/api', toConnect(api));                              // before any body parser: bodies stream
  app.use(express.json());                                      // your own routes below parse

  const relays = relayLifecycle([api]);
  await relays.startup();                                       // before listening
  const server = http.createServer({ ...gatewayServerOptions }, app).listen(Number(env.PORT ?? 8080));
  const stop = () => relays.close(server, { timeout: 10_000 }); // drain, then cut
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return { server, stop };
}

export function relayFromEnv(): Relay {
  return createRelay({
    targetBaseUrl: process.env.UPSTREAM_URL ?? 'http://localhost:8000',
  });
}
