// The Fastify, Koa and Hono sections of docs/frameworks.md. front-doors.test.ts runs each one
// against a real HTTP and WebSocket upstream on 127.0.0.1, on port 0 instead of 8080.
import http from 'node:http';
import { createRelay } from '@relay/core';
import { websocket } from '@relay/ws';

import fastify from 'fastify';
import { relayPlugin } from '@relay/frameworks/fastify';

export async function fastifyGateway(apiService = 'http://api-service:8000', port = 8080) {
  const api = createRelay({ targetBaseUrl: apiService, websocket: websocket() });

  const app = fastify();
  app.get('/health', async () => 'ok');                        // your own routes stay yours
  await app.register(relayPlugin, { relay: api, prefix: '/api' }); // HTTP and WebSocket under /api
  await app.listen({ port, host: '127.0.0.1' });               // starts the relay too (onReady)
  // GET /api/users → GET http://api-service:8000/users; ws://host/api/live → ws://api-service:8000/live
  process.once('SIGTERM', () => app.close());                  // drains the relay (preClose)
  return app;
}

import Koa from 'koa';
import { routeUpgrades } from '@relay/connect-adapter';
import { relayMiddleware } from '@relay/frameworks/koa';

export async function koaGateway(apiService = 'http://api-service:8000', port = 8080) {
  const api = createRelay({ targetBaseUrl: apiService, websocket: websocket() });

  const app = new Koa();
  app.use(relayMiddleware(api, { prefix: '/api' })); // before any body parser
  app.use((ctx) => {
    ctx.body = 'your app';
  });
  await api.startup();
  const server = http.createServer(app.callback()).listen(port);
  routeUpgrades(server, { '/api': api });           // WebSocket under /api
  return { api, server };
}

import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { relayHandler, type NodeEnv } from '@relay/frameworks/hono';

export async function honoGateway(apiService = 'http://api-service:8000', port = 8080) {
  const api = createRelay({ targetBaseUrl: apiService, websocket: websocket() });

  const app = new Hono<NodeEnv>();
  const toApi = relayHandler(api, { prefix: '/api' });
  app.all('/api', toApi);
  app.all('/api/*', toApi);
  app.get('/health', (c) => c.text('ok'));
  await api.startup();
  const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }) as http.Server;
  routeUpgrades(server, { '/api': api });                  // WebSocket under /api
  return { api, server };
}
