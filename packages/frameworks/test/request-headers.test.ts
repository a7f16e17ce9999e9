// Every front door sends upstream what middleware in front of it did to the request headers:
// Fastify's `request.headers` (an onRequest auth hook), Koa's `ctx.request.headers`, and the
// `c.env.incoming.headers` of a Hono app on @hono/node-server: added and replaced names go with
// the app's value, deleted ones are not sent, as http-proxy sends `req.headers`.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen } from '@relay/testkit';
import { relayPlugin } from '../src/fastify.js';
import { relayHandler, type NodeEnv } from '../src/hono.js';
import { relayMiddleware } from '../src/koa.js';
import { startBackend, type Backend } from './fixtures.js';

let backend: Backend;

test.before(async () => {
  backend = await startBackend();
});

test.after(async () => {
  await backend.close();
});

/** What the upstream got for a request the auth step accepted: the identity in, the client's token and spoofed tenant out. */
async function checkAuthEdits(base: string): Promise<void> {
  const response = await fetchRaw(`${base}/api/orders`, { headers: { authorization: 'Bearer client-secret', 'x-tenant': 'spoofed', accept: 'text/plain' } });
  assert.is(response.status, 200);
  const seen = backend.upstream.requests.at(-1)!;
  assert.is(seen.url, '/orders');
  assert.is(seen.headers['x-user-id'], '42', 'a header the middleware added');
  assert.is(seen.headers['x-tenant'], 'acme', 'a header the middleware replaced');
  assert.is(seen.headers.authorization, undefined, 'a header the middleware deleted');
  assert.is(seen.headers.accept, 'text/plain', 'a header it left alone');
}

test('Fastify: what an onRequest hook set or deleted on request.headers reaches the upstream', async () => {
  const app = fastify();
  app.addHook('onRequest', async (request) => {
    request.headers['x-user-id'] = '42';
    request.headers['x-tenant'] = 'acme';
    delete request.headers.authorization;
  });
  await app.register(relayPlugin, { relay: backend.relay(), prefix: '/api' });
  try {
    await checkAuthEdits(await app.listen({ port: 0, host: '127.0.0.1' }));
  } finally {
    await app.close();
  }
});

test('Koa: what middleware in front set or deleted on ctx.request.headers reaches the upstream', async () => {
  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.request.headers['x-user-id'] = '42';
    ctx.request.headers['x-tenant'] = 'acme';
    delete ctx.request.headers.authorization;
    await next();
  });
  app.use(relayMiddleware(backend.relay(), { prefix: '/api' }));
  const server: Server = createServer(app.callback());
  try {
    await checkAuthEdits(await listen(server));
  } finally {
    await close(server);
  }
});

test('Hono on @hono/node-server: what middleware set or deleted on c.env.incoming.headers reaches the upstream', async () => {
  const app = new Hono<NodeEnv>();
  app.use(async (c, next) => {
    const headers = c.env.incoming.headers;
    headers['x-user-id'] = '42';
    headers['x-tenant'] = 'acme';
    delete headers.authorization;
    await next();
  });
  app.all('/api/*', relayHandler(backend.relay(), { prefix: '/api' }));
  const server = await new Promise<Server>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started as Server));
  });
  try {
    await checkAuthEdits(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    await close(server);
  }
});

test.run();
