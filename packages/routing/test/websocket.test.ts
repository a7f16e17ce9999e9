// The routing stages run on WebSocket handshakes too: a rewrite moves the upstream path, a
// handshake no route matches is refused 404, a traversal a rewrite makes is refused 400.
import { createServer, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, type Relay } from '@relay/core';
import { close, listen } from '@relay/testkit';
import { websocket } from '@relay/ws';
import { rewritePath, routes } from '../src/index.js';

let upstream: Server;
let wss: WebSocketServer;
let relay: Relay;
let front: Server;
let base: string;

test.before(async () => {
  upstream = createServer();
  wss = new WebSocketServer({ server: upstream });
  wss.on('connection', (socket, req) => socket.send(`upstream ${req.url}`));
  const upstreamUrl = await listen(upstream);
  relay = createRelay({
    targetBaseUrl: `${upstreamUrl}/base`,
    websocket: websocket(),
    stages: [
      routes([
        { when: { path: '/old/**' }, stages: [rewritePath({ '/old': '/new' })] },
        { when: { path: '/evil/**' }, stages: [rewritePath(() => '/a/%2e%2e/%2e%2e/x')] },
      ]),
    ],
  });
  await relay.startup();
  front = createServer(relay.handle);
  front.on('upgrade', relay.upgrade);
  base = (await listen(front)).replace('http:', 'ws:');
});

test.after(async () => {
  await close(front);
  await relay.shutdown({ timeout: 500 });
  for (const client of wss.clients) client.terminate();
  await new Promise((resolve) => wss.close(resolve));
  await close(upstream);
});

function handshake(path: string): Promise<{ status: number; message: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(base + path);
    socket.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, message: '' });
      socket.on('error', () => {});
      socket.terminate();
    });
    socket.once('message', (data) => {
      resolve({ status: 101, message: String(data) });
      socket.close();
    });
    socket.once('error', reject);
  });
}

test('a rewrite applies to the handshake; no route is 404; a rewritten traversal is 400', async () => {
  assert.equal(await handshake('/old/room?x=1'), { status: 101, message: 'upstream /base/new/room?x=1' });
  assert.is((await handshake('/elsewhere')).status, 404);
  assert.is((await handshake('/evil/x')).status, 400);
});

test.run();
