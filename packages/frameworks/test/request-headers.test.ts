// Every front door sends upstream what middleware in front of it did to the request headers:
// Fastify's `request.headers` (an onRequest auth hook), Koa's `ctx.request.headers`, and the
// `c.env.incoming.headers` of a Hono app on @hono/node-server: added and replaced names go with
// the app's value, deleted ones are not sent, as http-proxy sends `req.headers`.
import { createServer, type Server } from 'node:http';
import { connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, h2Request, listen } from '@relay/testkit';
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

test('Fastify http2: a Host the onRequest hook set is the app\'s edit, as on HTTP/1.1, not a client :authority/Host conflict (400)', async () => {
  const editHost = async (request: { headers: Record<string, unknown> }) => {
    request.headers.host = 'tenant.test';
  };
  const plain = fastify();
  plain.addHook('onRequest', editHost);
  await plain.register(relayPlugin, { relay: backend.relay(), prefix: '/api' });
  const h2 = fastify({ http2: true });
  h2.addHook('onRequest', editHost);
  await h2.register(relayPlugin, { relay: backend.relay(), prefix: '/api' });
  const session = connect(await h2.listen({ port: 0, host: '127.0.0.1' }));
  try {
    const overHttp1 = await fetchRaw(`${await plain.listen({ port: 0, host: '127.0.0.1' })}/api/orders`);
    assert.is(overHttp1.status, 200, 'HTTP/1.1: the edit is accepted');
    assert.is(backend.upstream.requests.at(-1)!.headers['x-forwarded-host'], 'tenant.test');
    const before = backend.upstream.requests.length;
    const overHttp2 = await h2Request(session, { ':method': 'GET', ':path': '/api/orders' });
    assert.is(overHttp2.headers[':status'], 200, `HTTP/2: the same app, the same edit: ${overHttp2.body}`);
    assert.is(backend.upstream.requests.length, before + 1);
    assert.is(backend.upstream.requests.at(-1)!.headers['x-forwarded-host'], 'tenant.test', 'the app\'s Host replaced the client\'s :authority');
  } finally {
    session.close();
    await Promise.all([plain.close(), h2.close()]);
  }
});

test.run();
