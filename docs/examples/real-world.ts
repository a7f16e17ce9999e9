// docs/real-world-examples.md: the Python guide's three real-world examples, in TypeScript.
// real-world.test.ts runs each against real upstreams.
import express from 'express';
import { createRelay } from '@relay/core';
import { relayLifecycle, toConnect } from '@relay/connect-adapter';
import { cookies } from '@relay/cookies';
import { retry } from '@relay/retry';

export async function authServiceGateway(authService = 'http://auth-service:8000', port = 8080) {
  // Proxy to dedicated auth service
  const authProxy = createRelay({
    targetBaseUrl: authService,
    upstreamPrefix: '/',
    stages: [
      cookies({ rewriteDomain: () => '' }), // bind cookies to the main app
      retry({ maxRetries: 2 }),
    ],
  });

  const app = express();
  app.use('/auth', toConnect(authProxy));
  // Your other routes...

  const relays = relayLifecycle([authProxy]);
  await relays.startup();                   // on_startup
  const server = app.listen(port);
  const stop = () => relays.close(server);  // on_shutdown
  process.once('SIGTERM', stop);

  // /auth/login → auth-service:8000/login
  // /auth/logout → auth-service:8000/logout
  return { server, stop };
}

export async function versionedApiGateway(apiV2 = 'http://api-v2:8000', port = 8080) {
  // Proxy to versioned upstream API
  const apiProxy = createRelay({
    targetBaseUrl: apiV2,
    upstreamPrefix: '/api/v2',
  });

  const app = express();
  app.use('/api', toConnect(apiProxy));

  const relays = relayLifecycle([apiProxy]);
  await relays.startup();
  const server = app.listen(port);
  const stop = () => relays.close(server);
  process.once('SIGTERM', stop);

  // /api/users → http://api-v2:8000/api/v2/users
  return { server, stop };
}
