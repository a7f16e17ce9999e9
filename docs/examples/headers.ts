// docs/headers.md: header rules with @relay/headers. headers.test.ts runs each recipe against a
// real upstream that echoes what it received.
import { createRelay, type Relay, type Stage } from '@relay/core';
import { headers, rewriteLocation } from '@relay/headers';

export function withCustomHeaders(upstream = 'http://upstream:8000'): Relay {
  return createRelay({
    targetBaseUrl: upstream,
    stages: [headers({ extraRequest: { 'X-API-Key': 'secret-key', 'X-Service': 'main-app' } })],
  });
}

import { randomUUID } from 'node:crypto';

export interface TokenSource {
  current(): Promise<string>;
}

export function perRequestHeaders(tokens: TokenSource): Stage {
  return headers({
    extraRequest: {
      authorization: async () => `Bearer ${await tokens.current()}`, // a new token is read for each request
      'x-request-id': (request) => request.headers['x-request-id'] ?? randomUUID(),
    },
  });
}

export function dropHeaders(): Stage {
  return headers({
    dropRequest: ['x-internal-token'],
    dropResponse: ['x-debug-info'],
  });
}

export function allowListHeaders(): Stage {
  return headers({
    allowRequest: ['authorization', 'content-type'],
    allowResponse: ['content-type', 'set-cookie'],
  });
}

export function serviceToService(internalService = 'http://internal:9000', serviceToken = process.env.SERVICE_TOKEN!): Relay {
  return createRelay({
    targetBaseUrl: internalService,
    stages: [
      headers({
        dropRequest: ['authorization'], // don't forward client auth
        extraRequest: { 'X-Service-Auth': serviceToken },
      }),
    ],
  });
}

export function tokenExchange(exchange: (credential: string) => Promise<string>): Stage {
  return headers({
    dropRequest: ['authorization'],
    extraRequest: { 'x-service-auth': (request) => exchange(String(request.headers.authorization ?? '')) },
  });
}

export function forwardedAndVia(): Stage {
  return headers({ forwarded: true, via: 'edge-1' });
}

export function redirectsRewritten(authService = 'http://auth:8000'): Relay {
  const auth = createRelay({
    targetBaseUrl: authService,
    mountPath: '/auth',
    upstreamPrefix: '/api/v1',
    stages: [rewriteLocation()],
  });
  // upstream: 302 Location: http://auth:8000/api/v1/dashboard?tab=1
  // client:   302 Location: http://gw.example/auth/dashboard?tab=1
  // upstream: 201 Location: /api/v1/items/9      → client: /auth/items/9
  // upstream: 302 Location: https://sso.example/ → unchanged (another origin)
  return auth;
}
