// Prefixes a Fastify, Koa or Hono user may write beyond `/api`: a Fastify parametric prefix
// (`/tenants/:id`), refused at register, and a non-ASCII prefix (`/café`), served for the
// percent-encoded target clients send (`/caf%C3%A9/…`). Never a door that answers 404 (or falls
// through) for everything.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay } from '@relay/core';
import { close, echoHandler, fetchRaw, listen, memoryLogger, startUpstream, type Upstream } from '@relay/testkit';
import { relayPlugin } from '../src/fastify.js';
import { relayHandler, type NodeEnv } from '../src/hono.js';
import { relayMiddleware } from '../src/koa.js';

let upstream: Upstream;
const relays: Relay[] = [];

function newRelay(): Relay {
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  relays.push(relay);
  return relay;
}

test.before(async () => {
  upstream = await startUpstream((req, res, seen) => echoHandler(req, res, seen));
});

test.after(async () => {
  await Promise.all(relays.map((relay) => relay.shutdown({ timeout: 500 })));
  await upstream.close();
});

/** Registers the plugin under `prefix`; `null` when Fastify refuses the registration (a clear error: fine). */
async function fastifyUnder(prefix: string, refusals: Error[] = []): Promise<{ base: string; close(): Promise<void> } | null> {
  const app = fastify();
  try {
    await app.register(relayPlugin, { relay: newRelay(), prefix });
    await app.listen({ port: 0, host: '127.0.0.1' });
  } catch (error) {
    await app.close();
    assert.instance(error, Error);
    refusals.push(error as Error);
    return null;
  }
  const port = (app.server.address() as { port: number }).port;
  return { base: `http://127.0.0.1:${port}`, close: () => app.close() };
}

test('Fastify: a parametric prefix (`/tenants/:id`, as @fastify/http-proxy users register) is refused at register with a clear error, not a 404 for every request', async () => {
  // Fastify matches /tenants/7/orders to the plugin's route, then the handler compares the raw
  // target with the literal text "/tenants/:id", finds no match, and calls Fastify's 404.
  const refusals: Error[] = [];
  const served = await fastifyUnder('/tenants/:id', refusals);
  if (served === null) {
    assert.instance(refusals[0], TypeError);
    assert.match(refusals[0]!.message, /relayPlugin: prefix must be a literal path, got "\/tenants\/:id"/);
    return;
  }
  const response = await fetchRaw(`${served.base}/tenants/7/orders?page=2`);
  await served.close();
  assert.is(response.status, 200, `GET /tenants/7/orders?page=2: ${response.status} ${response.body.toString().slice(0, 120)}`);
  assert.is(JSON.parse(response.body.toString()).url, '/orders?page=2');
});

test('Fastify: a wildcard prefix (`/files/*`) is refused at register too', async () => {
  const refusals: Error[] = [];
  const served = await fastifyUnder('/files/*', refusals);
  await served?.close();
  assert.is(served, null, 'registered');
  assert.match(refusals[0]!.message, /prefix must be a literal path/);
});

test('Fastify: a non-ASCII prefix (`/café`) is relayed for the percent-encoded target clients send, in any case', async () => {
  const served = await fastifyUnder('/café');
  assert.ok(served !== null, 'the prefix is served');
  if (served === null) return;
  const response = await fetchRaw(`${served.base}/caf%C3%A9/menu`);
  const lower = await fetchRaw(`${served.base}/CAF%c3%a9/menu?x=1`);
  await served.close();
  assert.is(response.status, 200, `GET /caf%C3%A9/menu: ${response.status} ${response.body.toString().slice(0, 120)}`);
  const answer = JSON.parse(response.body.toString());
  assert.is(answer.url, '/menu');
  assert.is(answer.headers['x-forwarded-prefix'], '/caf%C3%A9');
  assert.is(lower.status, 200, 'any case, as every prefix matches');
  assert.is(JSON.parse(lower.body.toString()).url, '/menu?x=1');
});

test('Koa: a non-ASCII prefix (`/café`) is relayed for the percent-encoded target clients send', async () => {
  // relayMiddleware accepts '/café' and compares it with ctx.url ('/caf%C3%A9/menu'): every request
  // falls through to the app, silently.
  let middleware;
  try {
    middleware = relayMiddleware(newRelay(), { prefix: '/café' });
  } catch (error) {
    assert.instance(error, TypeError);
    return;
  }
  const app = new Koa();
  app.use(middleware);
  app.use((ctx) => {
    ctx.body = 'the app, not the relay';
  });
  const server = createServer(app.callback());
  const base = await listen(server);
  const response = await fetchRaw(`${base}/caf%C3%A9/menu`);
  await close(server);
  assert.is(response.status, 200);
  assert.not.equal(response.body.toString(), 'the app, not the relay', 'the request under /café reached the relay');
  assert.is(JSON.parse(response.body.toString()).url, '/menu');
});

test('Hono: a non-ASCII prefix (`/café`) is relayed for the percent-encoded target clients send', async () => {
  // Hono's router matches the decoded path; relayHandler compares the prefix with the raw target.
  const app = new Hono<NodeEnv>();
  app.all('/café/*', relayHandler(newRelay(), { prefix: '/café' }));
  const server = await new Promise<Server>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started as Server));
  });
  const response = await fetchRaw(`http://127.0.0.1:${(server.address() as AddressInfo).port}/caf%C3%A9/menu`);
  await close(server);
  assert.is(response.status, 200, `GET /caf%C3%A9/menu: ${response.status} ${response.body.toString().slice(0, 120)}`);
  assert.is(JSON.parse(response.body.toString()).url, '/menu');
});

test.run();
