// docs/path-mapping.md: how a request path becomes the upstream path. path-mapping.test.ts checks
// every mapping the page shows against a real upstream.
import { createRelay, type Relay } from '@relay/core';

export function samePath(authService = 'http://auth:8000'): Relay {
  // Mount at /auth, upstream at /
  return createRelay({
    targetBaseUrl: authService,
    mountPath: '/auth',
    upstreamPrefix: '/',
  });
  // /auth/login → http://auth:8000/login
}

export function differentPath(authService = 'http://auth:8000'): Relay {
  // Mount at /auth, upstream at /api/v1
  return createRelay({
    targetBaseUrl: authService,
    mountPath: '/auth',
    upstreamPrefix: '/api/v1',
  });
  // /auth/login → http://auth:8000/api/v1/login
}

export function targetWithPath(apiService = 'http://api:8000/base'): Relay {
  // The target's own path comes first, then the prefix, then the request path
  return createRelay({
    targetBaseUrl: apiService,
    mountPath: '/api',
    upstreamPrefix: '/v2',
  });
  // /api/users → http://api:8000/base/v2/users
}
