// Review s36 (issues 6 and 16): the WebSocket path through a front door (relayPlugin on Fastify 5):
// the prefix matched in any case for upgrades, close codes both ways, a refusal from the upstream
// as its status, and app.close() ending an open session with 1001 on both sides without hanging.
import fastify from 'fastify';
import { createServer, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay } from '@relay/core';
import { close, listen } from '@relay/testkit';
import { websocket } from '@relay/ws';
import { relayPlugin } from '../src/fastify.js';

const closedWith = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      reject(new Error(`status ${res.statusCode}`));
    });
  });
}

test('Fastify: upgrades under the prefix in any case, close codes both ways, a 403 refusal, and app.close() ends a session with 1001', async () => {
  const upstreamServer: Server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  const peers: WebSocket[] = [];
  const urls: string[] = [];
  upstreamServer.on('upgrade', (req, socket, head) => {
    urls.push(req.url ?? '');
    if (req.url === '/forbidden') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      peers.push(ws);
      ws.on('error', () => {});
    });
  });
  const upstreamUrl = await listen(upstreamServer);
  const app = fastify();
  await app.register(relayPlugin, { relay: createRelay({ targetBaseUrl: upstreamUrl, websocket: websocket() }), prefix: '/api' });
  const base = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('http:', 'ws:');
  try {
    // README of @relay/frameworks: "WebSocket upgrades under `prefix`, the prefix in any case".
    const first = await open(`${base}/API/room`);
    assert.is(urls.at(-1), '/room');
    const peer = peers.at(-1)!;
    const seenByClient = closedWith(first);
    peer.close(4404, 'room gone ✗');
    assert.equal(await seenByClient, { code: 4404, reason: 'room gone ✗' });

    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const ws = new WebSocket(`${base}/api/forbidden`);
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk));
        res.on('end', () => {
          ws.removeAllListeners('error');
          ws.on('error', () => {});
          ws.terminate();
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
    });
    assert.equal(refused, { status: 403, body: 'nope' });

    const last = await open(`${base}/api/last`);
    const lastPeer = peers.at(-1)!;
    const clientEnd = closedWith(last);
    const peerEnd = closedWith(lastPeer);
    const started = Date.now();
    await app.close();
    assert.ok(Date.now() - started < 8_000, 'app.close() does not wait forever for the relayed session');
    assert.is((await clientEnd).code, 1001);
    assert.is((await peerEnd).code, 1001);
  } finally {
    await app.close();
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    await close(upstreamServer);
  }
});

test.run();
