import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, type Relay } from '@relay/core';
import { routeUpgrades } from '@relay/connect-adapter';
import { close, delay, fetchRaw, listen, serveRelay, startUpstream } from '@relay/testkit';
import {
  cookieDomainRight,
  cookieDomainWrong,
  forgotShutdown,
  missingWebSocketTransport,
  ownWebSocketServerRight,
  ownWebSocketServerWrong,
  parserBeforeRelay,
  rightPrefix,
  wrongPrefix,
  withLifecycle,
  withWebSocketTransport,
} from './pitfalls.js';

test('pitfall 1: without shutdown() the upstream connection stays open after the server closed; with the lifecycle it is closed', async () => {
  const auth = await startUpstream();
  const connections = () => new Promise<number>((resolve) => auth.server.getConnections((_error, count) => resolve(count)));
  const wrong = forgotShutdown(auth.url, 0);
  if (!wrong.server.listening) await once(wrong.server, 'listening');
  assert.is((await fetchRaw(`http://127.0.0.1:${(wrong.server.address() as AddressInfo).port}/auth/login`)).status, 200, 'it starts on its own');
  process.removeListener('SIGTERM', wrong.stop);
  wrong.stop();
  await delay(200);
  assert.is(await connections(), 1, 'the relay still holds its keep-alive connection');
  auth.server.closeAllConnections();

  const { server, stop } = await withLifecycle(auth.url, 0);
  if (!server.listening) await once(server, 'listening');
  assert.is((await fetchRaw(`http://127.0.0.1:${(server.address() as AddressInfo).port}/auth/login`)).status, 200);
  process.removeListener('SIGTERM', stop);
  await stop();
  await delay(200);
  assert.is(await connections(), 0, 'shutdown closed the upstream connection');
  await auth.close();
});

test('pitfall 2: the wrong upstreamPrefix is a 404 from the upstream', async () => {
  const api = await startUpstream((req, res) => (req.url === '/api/v1/users' ? res.end('users') : res.writeHead(404).end()));
  for (const [relay, status] of [[wrongPrefix(api.url), 404], [rightPrefix(api.url), 200]] as const) {
    const gateway = await serveRelay(relay);
    assert.is((await fetchRaw(`${gateway.url}/users`)).status, status);
    await gateway.close();
  }
  await api.close();
});

test('pitfall 3: a cookie for the upstream domain, and the fix', async () => {
  const auth = await startUpstream((_req, res) => res.writeHead(200, { 'set-cookie': 'sid=1; Domain=auth.example.com; Path=/' }).end());
  const expected: Array<[Relay, string]> = [
    [cookieDomainWrong(auth.url), 'sid=1; Domain=auth.example.com; Path=/'],
    [cookieDomainRight(auth.url), 'sid=1; Path=/'],
  ];
  for (const [relay, cookie] of expected) {
    const gateway = await serveRelay(relay);
    assert.equal((await fetchRaw(`${gateway.url}/login`)).headers['set-cookie'], [cookie]);
    await gateway.close();
  }
  await auth.close();
});

test("pitfall 4: a body parser before the relay: the upstream gets a rebuilt body, not the client's bytes", async () => {
  const auth = await startUpstream();
  const proxy = createRelay({ targetBaseUrl: auth.url });
  await proxy.startup();
  const server = http.createServer(parserBeforeRelay(proxy));
  const url = await listen(server);
  await fetchRaw(`${url}/auth/session`, { method: 'POST', body: '{"user": "ada",  "remember": true}', headers: { 'content-type': 'application/json' } });
  assert.is(auth.requests[0]!.body.toString(), '{"user":"ada","remember":true}');
  await close(server);
  await proxy.shutdown();
  await auth.close();
});

/** A WebSocket upstream that greets every session. */
async function greeter() {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => socket.send('hi'));
  const url = await listen(server);
  return { url, close: async () => { wss.close(); await close(server); } };
}

/** Opens a WebSocket and resolves with its first message, or `HTTP <status>` when the handshake is refused. */
async function firstAnswer(url: string): Promise<string> {
  const client = new WebSocket(url);
  const answer = await new Promise<string>((resolve) => {
    client.once('message', (data) => resolve(String(data)));
    client.once('unexpected-response', (_request, response) => resolve(`HTTP ${response.statusCode}`));
    client.once('error', () => resolve('closed'));
    client.once('close', () => resolve('closed'));
  });
  client.terminate();
  return answer;
}

test('pitfall 5: a relay without a websocket transport answers upgrades 501', async () => {
  const chat = await greeter();
  for (const [relay, expected] of [[missingWebSocketTransport(chat.url), 'HTTP 501'], [withWebSocketTransport(chat.url), 'hi']] as const) {
    const gateway = await serveRelay(relay);
    gateway.server.on('upgrade', relay.upgrade);
    assert.is(await firstAnswer(`${gateway.url.replace('http:', 'ws:')}/room`), expected);
    await gateway.close();
  }
  await chat.close();
});

test("pitfall 6: your own WebSocketServer with { server, path } refuses the relays' upgrades; noServer does not", async () => {
  const chat = await greeter();
  const relay = withWebSocketTransport(chat.url);
  await relay.startup();

  const wrong = http.createServer();
  const wrongLive = ownWebSocketServerWrong(wrong);
  routeUpgrades(wrong, { '/chat': relay });
  const wrongBase = (await listen(wrong)).replace('http:', 'ws:');
  assert.is(await firstAnswer(`${wrongBase}/chat/room`), 'HTTP 400');

  const right = http.createServer();
  const live = ownWebSocketServerRight(right, { '/chat': relay });
  live.on('connection', (socket) => socket.send('live'));
  const rightBase = (await listen(right)).replace('http:', 'ws:');
  assert.is(await firstAnswer(`${rightBase}/chat/room`), 'hi');
  assert.is(await firstAnswer(`${rightBase}/live`), 'live');
  assert.is(await firstAnswer(`${rightBase}/nobody`), 'closed', 'an upgrade for nobody is closed, not left hanging');

  await relay.shutdown();
  wrongLive.close();
  live.close();
  await close(wrong);
  await close(right);
  await chat.close();
});

test.run();
