// A gateway config as a TypeScript module: `relay serve docs/examples/gateway.config.ts`.
import { defineConfig } from '@relay/gateway';

export default defineConfig({
  listen: [{ host: '127.0.0.1', port: Number(process.env.PORT ?? 8080) }],
  timeouts: { connect: 2_000, read: 10_000 },
  routes: [
    {
      name: 'api',
      match: { path: '/api', host: ['api.example.com', '*.api.example.com'], methods: ['GET', 'POST'] },
      upstream: process.env.API_URL ?? 'http://127.0.0.1:9000',
      upstreamPrefix: '/v2',
      headers: { dropRequest: ['x-internal-token'], via: true },
      retry: { maxRetries: 2 },
    },
  ],
});
