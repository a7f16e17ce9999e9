import type { Server } from 'node:http';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { cookies } from '@relay/cookies';
import { createRelay } from '@relay/core';
import { fetchRaw, startUpstream, waitFor } from '@relay/testkit';
import { websocket } from '@relay/ws';
import { relayLifecycle, routeUpgrades, toConnect } from '../src/index.js';

// End to end with the real @relay/ws: an Express app serving HTTP and WebSocket on one mount path,
// a second relay on another mount, upgrades routed by routeUpgrades, lifecycle by relayLifecycle.

test('Express + @relay/ws: upgrades routed by mount path to real ws upstreams, cookies rewritten on the 101, clean shutdown', async () => {
  const chatUpstream = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => chatUpstream.once('listening', resolve));
  chatUpstream.on('headers', (headers) => headers.push('Set-Cookie: room=1; Domain=chat.internal; Path=/'));
  chatUpstream.on('connection', (socket, req) => {
    socket.on('message', (data, binary) => socket.send(binary ? data : `chat ${req.url} ${String(data)}`, { binary }));
  });
  const feedUpstream = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => feedUpstream.once('listening', resolve));
  feedUpstream.on('connection', (socket, req) => socket.send(`feed ${req.url} ${req.headers['x-forwarded-prefix']}`));
  const httpUpstream = await startUpstream();
  const chatPort = (chatUpstream.address() as { port: number }).port;
  const feedPort = (feedUpstream.address() as { port: number }).port;

  const chat = createRelay({ targetBaseUrl: `http://127.0.0.1:${chatPort}`, upstreamPrefix: '/rooms', websocket: websocket(), stages: [cookies({ rewriteDomain: () => '' })] });
  const feed = createRelay({ targetBaseUrl: `http://127.0.0.1:${feedPort}`, websocket: websocket() });
  const api = createRelay({ targetBaseUrl: httpUpstream.url });
  const lifecycle = relayLifecycle({ '/chat': chat, '/feed': feed, '/api': api });
  await lifecycle.startup();

  const app = express();
  app.get('/healthz', (_req, res) => res.send('ok'));
  app.use('/chat', toConnect(chat));
  app.use('/feed', toConnect(feed));
  app.use('/api', toConnect(api));
  const server: Server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  routeUpgrades(server, { '/chat': chat, '/feed': feed });
  const base = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
  const httpBase = base.replace('ws:', 'http:');

  const client = new WebSocket(`${base}/chat/lobby?x=1`);
  let setCookie: string[] = [];
  client.once('upgrade', (res) => (setCookie = res.headers['set-cookie'] ?? []));
  await new Promise((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  assert.equal(setCookie, ['room=1; Path=/'], 'the cookies stage ran on the handshake response');
  client.send('hello');
  const echoed = await new Promise<string>((resolve) => client.once('message', (data) => resolve(String(data))));
  assert.is(echoed, 'chat /rooms/lobby?x=1 hello');
  client.send(Buffer.from([1, 2, 3]), { binary: true });
  const binary = await new Promise<Buffer>((resolve) => client.once('message', (data) => resolve(data as Buffer)));
  assert.equal([...binary], [1, 2, 3]);

  const feedClient = new WebSocket(`${base}/feed/news`);
  const first = await new Promise<string>((resolve, reject) => {
    feedClient.once('message', (data) => resolve(String(data)));
    feedClient.once('error', reject);
  });
  assert.is(first, 'feed /news /feed');

  assert.is((await fetchRaw(`${httpBase}/healthz`)).text, 'ok', "the app's own route is untouched");
  assert.is(JSON.parse((await fetchRaw(`${httpBase}/api/things`)).text).url, '/things');

  const closes = [client, feedClient].map((socket) => new Promise<number>((resolve) => socket.once('close', (code) => resolve(code))));
  await lifecycle.close(server, { timeout: 2_000 });
  assert.equal(await Promise.all(closes), [1001, 1001], 'shutdown closes relayed sessions with 1001');
  assert.ok(await waitFor(() => chatUpstream.clients.size === 0 && feedUpstream.clients.size === 0), 'no upstream session left');

  await new Promise((resolve) => chatUpstream.close(resolve));
  await new Promise((resolve) => feedUpstream.close(resolve));
  await httpUpstream.close();
});

test.run();
