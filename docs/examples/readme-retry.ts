// The example of packages/retry/README.md. package-readmes.test.ts runs it against a real upstream
// on 127.0.0.1, on port 0 instead of 8080.
import http from 'node:http';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';

export async function retryExample(apiService = 'http://api:8000', port = 8080) {
  const api = createRelay({
    targetBaseUrl: apiService,
    mountPath: '/api',
    timeout: { connect: 2_000, read: 10_000 },          // per attempt
    stages: [retry({ maxRetries: 3, backoffFactor: 200, jitter: true, deadline: 20_000 })],
  });
  await api.startup();
  const server = http.createServer(api.handle).listen(port);
  // GET /api/items: 502, 502, 200 upstream → the client gets the 200 (waits 0–200, then 0–400 ms)
  return { api, server };
}

// The stage order section of the README.
import { headers } from '@relay/headers';
import { authCheck } from './auth-check.js';

export function retryOrder(apiService: string, verify: (token: string) => boolean, sign: () => string) {
  return createRelay({
    targetBaseUrl: apiService,
    stages: [authCheck({ verify }), retry({ maxRetries: 2 }), headers({ extraRequest: { 'x-signature': sign } })], // once per request, the loop, once per attempt
  });
}
