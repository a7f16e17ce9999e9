// The example of packages/routing/README.md. routing.test.ts runs it against a real upstream on
// 127.0.0.1, on port 0 instead of 8080.
import http from 'node:http';
import { createRelay } from '@relay/core';
import { headers } from '@relay/headers';
import { rewritePath, routes, when } from '@relay/routing';

export async function routingExample(backend = 'http://backend:8000', port = 8080) {
  const gateway = createRelay({
    targetBaseUrl: backend,
    stages: [
      when({ host: '*.internal.example.com' }, headers({ extraRequest: { 'X-Internal': '1' } })),
      routes([
        { when: { path: '/api/v1/**' }, stages: [rewritePath({ '/api/v1': '/v1' })] }, // /api/v1/users → /v1/users
        { when: { path: '/u/*', method: ['GET', 'HEAD'] }, stages: [rewritePath([[/^\/u\/(\d+)$/, '/users/$1']])] },
        { when: { path: '/health' }, stages: [] },
        // anything else: 404, never sent upstream
      ]),
    ],
  });
  await gateway.startup();
  const server = http.createServer(gateway.handle).listen(port);
  return { gateway, server };
}
