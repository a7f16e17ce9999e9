import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay } from '@relay/core';
import { close, closedPort, fetchRaw, listen, startUpstream, tlsFixture } from '@relay/testkit';
import express from 'express';
import http2 from 'node:http2';
import https from 'node:https';
import {
  connectServer,
  expressErrorHandler,
  expressGateway,
  gatewayWithChat,
  http2Gateway,
  nextRouteHandlers,
  nodeHttpServer,
  polkaServer,
  relayBeforeParsers,
} from './frameworks.js';

async function baseOf(server: http.Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('Express Quick Start: /auth/** relayed, the app keeps /health, SIGTERM handler closes both', async () => {
  const authService = await startUpstream();
  const { server, stop } = await expressGateway(authService.url, 0);
  const base = await baseOf(server);
  assert.is((await fetchRaw(`${base}/auth/login`)).status, 200);
  await fetchRaw(`${base}/auth/register`, { method: 'POST', body: 'name=ada', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(authService.requests.map((seen) => [seen.method, seen.url, seen.body.toString()]), [['GET', '/login', ''], ['POST', '/register', 'name=ada']]);
  assert.is(authService.requests[0]!.headers['x-forwarded-prefix'], '/auth');
  assert.is((await fetchRaw(`${base}/health`)).text, 'ok');
  process.removeListener('SIGTERM', stop);
  await stop();
  assert.not.ok(server.listening);
  await authService.close();
});

test('node:http, Connect and Polka map /auth/login?x=1 to /login?x=1 the same way', async () => {
  const authService = await startUpstream();
  const proxy = createRelay({ targetBaseUrl: authService.url });
  const direct = createRelay({ targetBaseUrl: authService.url, mountPath: '/auth' });
  await proxy.startup();
  await direct.startup();
  for (const server of [nodeHttpServer(direct), connectServer(proxy), polkaServer(proxy)]) {
    const base = await listen(server);
    const response = await fetchRaw(`${base}/auth/login?x=1`);
    assert.is(response.status, 200);
    assert.is(JSON.parse(response.text).url, '/login?x=1');
    await close(server);
  }
  assert.is(authService.requests.length, 3);
  await proxy.shutdown();
  await direct.shutdown();
  await authService.close();
});

test("errors: 'next' hands a RelayError to the app's error handler", async () => {
  const proxy = createRelay({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}` });
  await proxy.startup();
  const server = http.createServer(expressErrorHandler(proxy));
  const base = await listen(server);
  const response = await fetchRaw(`${base}/auth/login`);
  assert.is(response.status, 502);
  assert.equal(JSON.parse(response.text), { error: 'ERR_UPSTREAM_UNREACHABLE' });
  await close(server);
  await proxy.shutdown();
});

test('relay before the body parsers: the body streams through; the app still parses its own routes', async () => {
  const authService = await startUpstream();
  const proxy = createRelay({ targetBaseUrl: authService.url });
  await proxy.startup();
  const server = http.createServer(relayBeforeParsers(proxy));
  const base = await listen(server);
  const json = { headers: { 'content-type': 'application/json' }, method: 'POST', body: '{"a": 1}' };
  await fetchRaw(`${base}/auth/session`, json);
  assert.is(authService.requests[0]!.body.toString(), '{"a": 1}', 'byte for byte, spacing included');
  assert.equal(JSON.parse((await fetchRaw(`${base}/orders`, json)).text), { received: { a: 1 } });
  await close(server);
  await proxy.shutdown();
  await authService.close();
});

test('WebSocket upgrades and lifecycle: ws://gateway/chat/room reaches the chat service at /room; close() ends it with 1001', async () => {
  const authService = await startUpstream();
  const chatHttp = http.createServer();
  const chatService = new WebSocketServer({ server: chatHttp });
  const paths: string[] = [];
  chatService.on('connection', (socket, req) => {
    paths.push(req.url ?? '');
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  const chatUrl = await listen(chatHttp);

  const { server, stop } = await gatewayWithChat(authService.url, chatUrl, 0);
  const base = await baseOf(server);
  const client = new WebSocket(`${base.replace('http:', 'ws:')}/chat/room`);
  await once(client, 'open');
  client.send('hello');
  const [echo] = await once(client, 'message');
  assert.is(String(echo), 'hello');
  assert.equal(paths, ['/room']);
  assert.is((await fetchRaw(`${base}/auth/me`)).status, 200, 'HTTP through the other relay');

  const closed = once(client, 'close');
  process.removeListener('SIGTERM', stop);
  await stop();
  const [code] = await closed;
  assert.is(code, 1001);
  chatService.close();
  await close(chatHttp);
  await authService.close();
});

test('HTTP/2 beside Express: the relay serves HTTP/2 and HTTP/1.1 clients, Express its HTTP/1.1 ones, HTTP/2 for the app gets 505', async () => {
  const upstream = await startUpstream();
  const proxy = createRelay({ targetBaseUrl: upstream.url, mountPath: '/api' });
  const app = express().get('/own', (_req, res) => void res.send('express'));
  const server = http2Gateway(proxy, app, tlsFixture);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const session = http2.connect(`https://localhost:${port}`, { ca: tlsFixture.cert });
  const h2Status = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': path });
      stream.on('response', (headers) => resolve(Number(headers[':status'])));
      stream.on('error', reject);
      stream.resume();
    });
  const h1Text = (path: string) =>
    new Promise<string>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path, servername: 'localhost', ca: tlsFixture.cert, agent: false }, (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve(`${res.statusCode} ${text}`));
        })
        .on('error', reject);
    });
  assert.is(await h2Status('/api/items'), 200);
  assert.is(upstream.requests[0]!.url, '/items');
  assert.is(await h2Status('/own'), 505);
  assert.is(await h1Text('/own'), '200 express');
  assert.match(await h1Text('/api/items'), /^200 /);
  session.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await proxy.shutdown();
  await upstream.close();
});

test('relay.fetch as Next.js route handlers: GET and a streamed POST reach the upstream under the mount', async () => {
  const upstream = await startUpstream();
  const handlers = nextRouteHandlers(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api' }));
  assert.is((await handlers.GET(new globalThis.Request('http://site.example/api/users/7'))).status, 200);
  const posted = await handlers.POST(new globalThis.Request('http://site.example/api/users', { method: 'POST', body: '{"name":"ada"}', headers: { 'content-type': 'application/json' } }));
  assert.is(posted.status, 200);
  assert.equal(upstream.requests.map((r) => [r.method, r.url, r.body.toString()]), [['GET', '/users/7', ''], ['POST', '/users', '{"name":"ada"}']]);
  await upstream.close();
});

test.run();
