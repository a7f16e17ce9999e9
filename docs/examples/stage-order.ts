// docs/stages.md, "Stage order": where each stage goes and why. stages.test.ts checks that each
// stage runs once per request or once per attempt, as the comments say.
import { createRelay, type Relay } from '@relay/core';
import { cookies } from '@relay/cookies';
import { headers, rewriteLocation } from '@relay/headers';
import { retry } from '@relay/retry';
import { authCheck } from './auth-check.js';
import { requestId } from './request-id.js';

export function orderedRelay(
  authService = 'http://auth:8000',
  verify: (token: string) => boolean | Promise<boolean> = () => false,
  attemptToken: () => string = () => 'token',
): Relay {
  return createRelay({
    targetBaseUrl: authService,
    mountPath: '/auth',
    stages: [
      requestId(),                          // outermost: every request gets an id, refused ones too
      authCheck({ verify }),                // answers 401 before anything behind it runs
      cookies({ rewriteDomain: () => '' }), // rewrites the final response, once
      rewriteLocation(),                    // likewise
      retry({ maxRetries: 2 }),             // the loop: everything after it runs once per attempt
      headers({ extraRequest: { 'x-attempt-token': attemptToken } }), // a fresh token per attempt
    ],
  });
}

export function typicalOrder(authService = 'http://auth:8000'): Relay {
  return createRelay({
    targetBaseUrl: authService,
    stages: [cookies({ rewriteDomain: () => '' }), rewriteLocation(), retry({ maxRetries: 2 }), headers({ dropRequest: ['x-internal-token'] })],
  });
}
