import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { close, fetchRaw, startUpstream, type Upstream } from '@relay/testkit';
import { fastifyGateway, honoGateway, koaGateway } from './front-doors.js';

let upstream: Upstream;
let wss: WebSocketServer;

test.before(async () => {
  upstream = await startUpstream();
  wss = new WebSocketServer({ server: upstream.server });
  wss.on('connection', (socket, req) => socket.on('message', (data) => socket.send(`${req.url} ${String(data)}`)));
});

test.after(async () => {
  for (const client of wss.clients) client.terminate();
  await new Promise((resolve) => wss.close(resolve));
  await upstream.close();
});

async function baseOf(server: Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** GET /api/users reaches /users, a POST body arrives byte for byte, and ws /api/live echoes. */
async function exercise(base: string): Promise<void> {
  const get = JSON.parse((await fetchRaw(`${base}/api/users?page=2`)).text);
  assert.equal([get.url, get.headers['x-forwarded-prefix']], ['/users?page=2', '/api']);
  const post = JSON.parse((await fetchRaw(`${base}/api/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":1' })).text);
  assert.is(post.body, '{"id":1');
  const socket = new WebSocket(`${base.replace('http:', 'ws:')}/api/live`);
  await once(socket, 'open');
  socket.send('hi');
  const [message] = await once(socket, 'message');
  assert.is(String(message), '/live hi');
  socket.close();
  await once(socket, 'close');
}

test('Fastify: relayPlugin under /api, HTTP and WebSocket', async () => {
  const app = await fastifyGateway(upstream.url, 0);
  const base = await baseOf(app.server);
  await exercise(base);
  assert.is((await fetchRaw(`${base}/health`)).text, 'ok');
  await app.close();
});

test('Koa: relayMiddleware under /api, upgrades through routeUpgrades', async () => {
  const { api, server } = await koaGateway(upstream.url, 0);
  const base = await baseOf(server);
  await exercise(base);
  assert.is((await fetchRaw(`${base}/other`)).text, 'your app');
  await close(server);
  await api.shutdown();
});

test('Hono on @hono/node-server: relayHandler under /api, upgrades through routeUpgrades', async () => {
  const { api, server } = await honoGateway(upstream.url, 0);
  const base = await baseOf(server);
  await exercise(base);
  assert.is((await fetchRaw(`${base}/health`)).text, 'ok');
  await close(server);
  await api.shutdown();
});

test.run();
