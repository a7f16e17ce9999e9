// The example of packages/core/README.md. package-readmes.test.ts runs it against a real upstream
// on 127.0.0.1, on port 0 instead of 8080.
import http from 'node:http';
import { createRelay, gatewayServerOptions } from '@relay/core';

export async function coreExample(apiService = 'http://api-v2:8000', port = 8080) {
  const api = createRelay({
    targetBaseUrl: apiService,
    mountPath: '/api',
    upstreamPrefix: '/api/v2',
  });
  await api.startup();
  const server = http.createServer({ ...gatewayServerOptions }, api.handle).listen(port);
  // GET /api/users?page=2 → GET http://api-v2:8000/api/v2/users?page=2
  return { api, server };
}
