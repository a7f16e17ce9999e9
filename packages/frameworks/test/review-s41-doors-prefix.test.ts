// Review s41 (front doors): prefixes a Fastify or Koa user writes that the doors accept and then
// never serve: a Fastify parametric prefix (`/tenants/:id`), and a non-ASCII prefix (`/café`)
// while clients send the percent-encoded target (`/caf%C3%A9/…`). Each must either be relayed or
// be refused when the app is built; never a door that answers 404 (or falls through) for everything.
import { createServer } from 'node:http';
import fastify from 'fastify';
import Koa from 'koa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay } from '@relay/core';
import { close, echoHandler, fetchRaw, listen, memoryLogger, startUpstream, type Upstream } from '@relay/testkit';
import { relayPlugin } from '../src/fastify.js';
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
async function fastifyUnder(prefix: string): Promise<{ base: string; close(): Promise<void> } | null> {
  const app = fastify();
  try {
    await app.register(relayPlugin, { relay: newRelay(), prefix });
    await app.listen({ port: 0, host: '127.0.0.1' });
  } catch (error) {
    await app.close();
    assert.instance(error, Error);
    return null;
  }
  const port = (app.server.address() as { port: number }).port;
  return { base: `http://127.0.0.1:${port}`, close: () => app.close() };
}

test('Fastify: a parametric prefix (`/tenants/:id`, as @fastify/http-proxy users register) is relayed or refused at register, not a 404 for every request', async () => {
  // Fastify matches /tenants/7/orders to the plugin's route, then the handler compares the raw
  // target with the literal text "/tenants/:id", finds no match, and calls Fastify's 404.
  const served = await fastifyUnder('/tenants/:id');
  if (served === null) return;
  const response = await fetchRaw(`${served.base}/tenants/7/orders?page=2`);
  await served.close();
  assert.is(response.status, 200, `GET /tenants/7/orders?page=2: ${response.status} ${response.body.toString().slice(0, 120)}`);
  assert.is(JSON.parse(response.body.toString()).url, '/orders?page=2');
});

test('Fastify: a non-ASCII prefix (`/café`) is relayed for the percent-encoded target clients send, or refused at register', async () => {
  const served = await fastifyUnder('/café');
  if (served === null) return;
  const response = await fetchRaw(`${served.base}/caf%C3%A9/menu`);
  await served.close();
  assert.is(response.status, 200, `GET /caf%C3%A9/menu: ${response.status} ${response.body.toString().slice(0, 120)}`);
  assert.is(JSON.parse(response.body.toString()).url, '/menu');
});

test('Koa: a non-ASCII prefix (`/café`) is relayed for the percent-encoded target clients send, or refused by relayMiddleware', async () => {
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

test.run();
