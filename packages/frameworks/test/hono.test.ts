// relayHandler in a real Hono app on @hono/node-server, with a real HTTP client and a real ws
// client (upgrades through routeUpgrades on the node server).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { routeUpgrades } from '@relay/connect-adapter';
import { close, fetchRaw } from '@relay/testkit';
import { relayHandler, type NodeEnv } from '../src/hono.js';
import { checkGet, checkStreaming, checkTraversal, checkUnparsedBody, checkWebSocket, startBackend, type Backend } from './fixtures.js';

let backend: Backend;
let server: Server;
let base: string;
const logged: string[] = [];

test.before(async () => {
  backend = await startBackend();
  const api = backend.relay();
  const app = new Hono<NodeEnv>();
  app.use(async (c, next) => {
    await next();
    logged.push(`${c.req.method} ${c.req.path} ${c.env.outgoing.writableFinished}`);
  });
  app.get('/health', (c) => c.text('ok'));
  const toApi = relayHandler(api, { prefix: '/api' });
  app.all('/api', toApi);
  app.all('/api/*', toApi);
  app.post('/json', async (c) => c.json({ parsed: await c.req.json() }));
  server = await new Promise<Server>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started as Server));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  routeUpgrades(server, { '/api': api });
});

test.after(async () => {
  await close(server);
  await backend.close();
});

test('HTTP under the prefix goes to the relay; the app keeps its own routes', async () => {
  await checkGet(base, '/api');
  assert.is((await fetchRaw(`${base}/health`)).text, 'ok');
  assert.is((await fetchRaw(`${base}/apix`)).status, 404);
  assert.ok(logged.includes('GET /api/users/7 true'), 'middleware around the handler see the finished response');
});

test('bodies pass unparsed and stream both ways; the app still reads its own bodies', async () => {
  await checkUnparsedBody(base, '/api');
  await checkStreaming(base, '/api');
  const own = await fetchRaw(`${base}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  assert.equal(JSON.parse(own.text), { parsed: { a: 1 } });
});

test('WebSocket through routeUpgrades on the node server', async () => {
  await checkWebSocket(base, '/api');
});

test('client traversal is refused by the relay', async () => {
  await checkTraversal(base, '/api', backend.upstream);
});

test('options are checked; a handler outside @hono/node-server says so', async () => {
  const relay = backend.relay();
  assert.throws(() => relayHandler(relay, { prefx: '/a' } as never), /unknown option "prefx" \(did you mean "prefix"\?/);
  const app = new Hono<NodeEnv>();
  app.all('/*', relayHandler(relay));
  app.onError((error, c) => c.text(error.message, 500));
  const response = await app.request('/x');
  assert.is(response.status, 500);
  assert.match(await response.text(), /needs @hono\/node-server/);
});

test.run();
