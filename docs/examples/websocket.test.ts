import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { close, listen, tlsFixture } from '@relay/testkit';
import { chatGateway, moderatedChatRelay, tunedChatRelay } from './websocket.js';

/** A `ws` chat service: echoes every message with its type; `close:<code>` closes with that code. */
async function chatService(server: http.Server) {
  const wss = new WebSocketServer({ server });
  const paths: string[] = [];
  wss.on('connection', (socket, req) => {
    paths.push(req.url ?? '');
    socket.on('message', (data, isBinary) => {
      const text = String(data);
      if (!isBinary && text.startsWith('close:')) socket.close(Number(text.slice(6)), 'bye');
      else socket.send(data, { binary: isBinary });
    });
  });
  const url = await listen(server);
  return { url, paths, close: async () => { wss.close(); await close(server); } };
}

test('ws://app/ws/room reaches /room; frames keep their type; close codes pass through; shutdown sends 1001', async () => {
  const chat = await chatService(http.createServer());
  const { server, stop } = await chatGateway(chat.url, 0);
  if (!server.listening) await once(server, 'listening');
  const base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const client = new WebSocket(`${base}/ws/room?user=ada`);
  await once(client, 'open');
  assert.equal(chat.paths, ['/room?user=ada']);
  client.send('hello');
  const [text, textIsBinary] = await once(client, 'message');
  assert.equal([String(text), textIsBinary], ['hello', false]);
  client.send(Buffer.from([1, 2, 3]));
  const [binary, binaryIsBinary] = await once(client, 'message');
  assert.equal([[...(binary as Buffer)], binaryIsBinary], [[1, 2, 3], true]);

  client.send('close:4000');
  const [code, reason] = await once(client, 'close');
  assert.equal([code, String(reason)], [4000, 'bye'], "the upstream's code and reason");

  const second = new WebSocket(`${base}/ws/other`);
  await once(second, 'open');
  const closed = once(second, 'close');
  process.removeListener('SIGTERM', stop);
  await stop();
  assert.is((await closed)[0], 1001, 'relay shutting down');
  await chat.close();
});

test('wss upstream with a private CA; a message over maxPayload closes with 1009', async () => {
  const chat = await chatService(https.createServer(tlsFixture) as unknown as http.Server);
  const relay = tunedChatRelay(tlsFixture.cert, chat.url.replace('http:', 'https:'));
  await relay.startup();
  const gateway = http.createServer(relay.handle);
  gateway.on('upgrade', relay.upgrade);
  const base = (await listen(gateway)).replace('http:', 'ws:');

  const client = new WebSocket(`${base}/secure`);
  await once(client, 'open');
  client.send('over TLS');
  assert.is(String((await once(client, 'message'))[0]), 'over TLS');
  client.send(Buffer.alloc(1024 * 1024 + 1));
  assert.is((await once(client, 'close'))[0], 1009);

  await relay.shutdown();
  await close(gateway);
  await chat.close();
});

test('a message policy: a hook closes with 1008, empty upstream messages are dropped, the token deadline ends the session', async () => {
  const chat = await chatService(http.createServer());
  const relay = moderatedChatRelay(chat.url);
  await relay.startup();
  const gateway = http.createServer(relay.handle);
  gateway.on('upgrade', relay.upgrade);
  const base = (await listen(gateway)).replace('http:', 'ws:');

  const client = new WebSocket(`${base}/room`, { headers: { 'x-token-expires': String(Date.now() + 60_000) } });
  await once(client, 'open');
  client.send('');
  client.send('hello');
  assert.is(String((await once(client, 'message'))[0]), 'hello', 'the empty echo was dropped');
  client.send('buy spam now');
  const [code, reason] = await once(client, 'close');
  assert.equal([code, String(reason)], [1008, 'no spam']);

  const expiring = new WebSocket(`${base}/room`, { headers: { 'x-token-expires': String(Date.now() + 500) } });
  await once(expiring, 'open');
  const [expiredCode, expiredReason] = await once(expiring, 'close');
  assert.equal([expiredCode, String(expiredReason)], [1008, 'session expired']);

  await relay.shutdown();
  await close(gateway);
  await chat.close();
});

test.run();
