import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay } from '@relay/core';
import { websocket } from '@relay/ws';
import { close, fetchRaw, listen, serveRelay, startUpstream } from '@relay/testkit';
import { upgradesExample } from './readme-connect-adapter.js';
import { cookiesExample } from './readme-cookies.js';
import { coreExample } from './readme-core.js';
import { headersExample } from './readme-headers.js';
import { retryExample, retryOrder } from './readme-retry.js';

async function baseOf(server: http.Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('@relay/core: /api/users?page=2 → /api/v2/users?page=2, on a server with gatewayServerOptions', async () => {
  const upstream = await startUpstream();
  const { api, server } = await coreExample(upstream.url, 0);
  await fetchRaw(`${await baseOf(server)}/api/users?page=2`);
  assert.is(upstream.requests[0]!.url, '/api/v2/users?page=2');
  assert.is(server.headersTimeout, 10_000);
  await close(server);
  await api.shutdown();
  await upstream.close();
});

test("@relay/headers: the client's credentials stay, the service token goes, redirects are rewritten", async () => {
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/old') res.writeHead(302, { location: `http://127.0.0.1:${(req.socket.localPort)}/new` }).end();
    else res.writeHead(200, { 'x-debug-info': 'internal', 'content-type': 'application/json' }).end(JSON.stringify(req.headers));
  });
  const { internal, server } = await headersExample(upstream.url, 'svc', 0);
  const base = await baseOf(server);
  const response = await fetchRaw(`${base}/internal/x`, { headers: { authorization: 'Bearer user' } });
  const seen = JSON.parse(response.text);
  assert.equal([seen.authorization, seen['x-service-auth'], response.headers['x-debug-info']], [undefined, 'svc', undefined]);
  const redirect = await fetchRaw(`${base}/internal/old`, { headers: { host: 'gw' } });
  assert.is(redirect.headers.location, 'http://gw/internal/new');
  await close(server);
  await internal.shutdown();
  await upstream.close();
});

test('@relay/cookies: Domain=auth.internal is dropped', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'set-cookie': 'sid=abc; Domain=auth.internal; Path=/; HttpOnly' }).end());
  const { auth, server } = await cookiesExample(upstream.url, 0);
  assert.equal((await fetchRaw(`${await baseOf(server)}/auth/login`)).headers['set-cookie'], ['sid=abc; Path=/; HttpOnly']);
  await close(server);
  await auth.shutdown();
  await upstream.close();
});

test('@relay/retry: 502, 502, 200 upstream → the client gets the 200', async () => {
  let calls = 0;
  const upstream = await startUpstream((_req, res) => (++calls < 3 ? res.writeHead(502).end() : res.end('items')));
  const { api, server } = await retryExample(upstream.url, 0);
  const response = await fetchRaw(`${await baseOf(server)}/api/items`);
  assert.equal([response.status, response.text, calls], [200, 'items', 3]);
  await close(server);
  await api.shutdown();
  await upstream.close();
});

test('@relay/retry stage order: the auth check once per request, the signature once per attempt', async () => {
  let calls = 0;
  const upstream = await startUpstream((_req, res) => (++calls === 1 ? res.writeHead(503).end() : res.end()));
  let checks = 0;
  let signatures = 0;
  const gateway = await serveRelay(retryOrder(upstream.url, (token) => (checks++, token === 'ok'), () => `sig-${++signatures}`));
  assert.is((await fetchRaw(`${gateway.url}/x`, { headers: { authorization: 'Bearer ok' } })).status, 200);
  assert.equal([checks, signatures], [1, 2]);
  assert.equal(upstream.requests.map((seen) => seen.headers['x-signature']), ['sig-1', 'sig-2']);
  await gateway.close();
  await upstream.close();
});

test('@relay/connect-adapter: routeUpgrades sends ws://host/chat/room to the chat relay as /room', async () => {
  const chatHttp = http.createServer();
  const wss = new WebSocketServer({ server: chatHttp });
  wss.on('connection', (socket, req) => socket.send(`chat saw ${req.url} ${req.headers['x-forwarded-prefix']}`));
  const chatUrl = await listen(chatHttp);
  const chat = createRelay({ targetBaseUrl: chatUrl, websocket: websocket() });
  const auth = createRelay({ targetBaseUrl: chatUrl, websocket: websocket() });
  await chat.startup();
  await auth.startup();
  const server = upgradesExample(express(), chat, auth, 0);
  const client = new WebSocket(`${(await baseOf(server)).replace('http:', 'ws:')}/chat/room`);
  assert.is(String((await once(client, 'message'))[0]), 'chat saw /room /chat');
  client.close();
  await once(client, 'close');
  await chat.shutdown();
  await auth.shutdown();
  await close(server);
  wss.close();
  await close(chatHttp);
});

test.run();
