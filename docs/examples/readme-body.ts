// The example of packages/body/README.md. bodies.test.ts runs it against a real upstream on
// 127.0.0.1, on port 0 instead of 8080.
import http from 'node:http';
import { createRelay } from '@relay/core';
import { bodyLimit, compress, transformResponse } from '@relay/body';

export async function bodyExample(apiService = 'http://api:8000', port = 8080) {
  const api = createRelay({
    targetBaseUrl: apiService,
    mountPath: '/api',
    stages: [
      compress(),                                                    // br or gzip, as the client accepts
      transformResponse((html) => html.replaceAll('http://api:8000', '/api'), { types: ['text/html'] }),
      bodyLimit({ maxBytes: 1024 * 1024 }),                          // 413 for larger uploads
    ],
  });
  await api.startup();
  const server = http.createServer(api.handle).listen(port);
  // GET /api/ with Accept-Encoding: gzip, br → the upstream's HTML, links rewritten, compressed with br
  return { api, server };
}
