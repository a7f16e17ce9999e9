// relayMiddleware on a real Koa server, with a real HTTP client and a real ws client
// (upgrades through routeUpgrades on the server Koa listens with).
import { createServer, type Server } from 'node:http';
import Koa from 'koa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { routeUpgrades } from '@relay/connect-adapter';
import { close, fetchRaw, listen, memoryLogger } from '@relay/testkit';
import { createRelay } from '@relay/core';
import { relayMiddleware } from '../src/koa.js';
import { checkGet, checkStreaming, checkTraversal, checkUnparsedBody, checkWebSocket, startBackend, type Backend } from './fixtures.js';

let backend: Backend;
let server: Server;
let base: string;
const seenByOuter: string[] = [];

test.before(async () => {
  backend = await startBackend();
  const api = backend.relay();
  const app = new Koa();
  app.use(async (ctx, next) => {
    await next();
    seenByOuter.push(`${ctx.method} ${ctx.url} ${ctx.res.writableFinished}`);
  });
  app.use(relayMiddleware(api, { prefix: '/api' }));
  app.use(async (ctx) => {
    ctx.body = { own: ctx.path };
  });
  server = createServer(app.callback());
  base = await listen(server);
  routeUpgrades(server, { '/api': api });
});

test.after(async () => {
  await close(server);
  await backend.close();
});

test('HTTP under the prefix goes to the relay; the rest to the app', async () => {
  await checkGet(base, '/api');
  const own = await fetchRaw(`${base}/apix`);
  assert.equal(JSON.parse(own.text), { own: '/apix' });
  assert.ok(seenByOuter.includes('GET /api/users/7?q=%2F..&b=a+b true'), 'the middleware resolves once the response is sent');
});

test('bodies pass unparsed and stream both ways', async () => {
  await checkUnparsedBody(base, '/api');
  await checkStreaming(base, '/api');
});

test('WebSocket through routeUpgrades on the Koa server', async () => {
  await checkWebSocket(base, '/api');
});

test('client traversal is refused by the relay', async () => {
  await checkTraversal(base, '/api', backend.upstream);
});

test('a body parser in front of the relay: 500 ERR_BODY_CONSUMED and a log line', async () => {
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: backend.upstream.url, logger });
  const app = new Koa();
  app.use(async (ctx, next) => {
    for await (const _chunk of ctx.req) void _chunk;
    await next();
  });
  app.use(relayMiddleware(relay));
  const parsed = createServer(app.callback());
  const url = await listen(parsed);
  const response = await fetchRaw(`${url}/x`, { method: 'POST', body: 'payload' });
  assert.is(response.status, 500);
  assert.ok(logger.lines.some((line) => line.fields.code === 'ERR_BODY_CONSUMED'));
  await close(parsed);
  await relay.shutdown();
});

test('options are checked', () => {
  const relay = backend.relay();
  assert.throws(() => relayMiddleware(relay, { prefx: '/a' } as never), /unknown option "prefx" \(did you mean "prefix"\?/);
  assert.throws(() => relayMiddleware(relay, { prefix: 'api' }), /must start with "\/"/);
  assert.throws(() => relayMiddleware({} as never), /must be a relay/);
});

test.run();
