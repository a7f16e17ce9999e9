import { once } from 'node:events';
import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay } from '@relay/core';
import { websocket } from '@relay/ws';
import { close, fetchRaw, listen, serveRelay, startUpstream } from '@relay/testkit';
import { authCheck } from './auth-check.js';
import { orderedRelay, typicalOrder } from './stage-order.js';

test('authCheck: 401 with WWW-Authenticate before the upstream; a valid token passes; WebSocket handshakes too', async () => {
  const upstream = await startUpstream();
  const wsHttp = http.createServer((_req, res) => res.end('http'));
  const wss = new WebSocketServer({ server: wsHttp });
  wss.on('connection', (socket) => socket.send('welcome'));
  const wsUrl = await listen(wsHttp);

  const stage = authCheck({ verify: async (token) => token === 'good' });
  const api = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [stage] }));
  const refused = await fetchRaw(`${api.url}/orders`, { method: 'POST', body: 'x'.repeat(100_000) });
  assert.is(refused.status, 401);
  assert.is(refused.headers['www-authenticate'], 'Bearer realm="api"');
  assert.is((await fetchRaw(`${api.url}/orders`, { headers: { authorization: 'Bearer bad' } })).status, 401);
  assert.is(upstream.requests.length, 0, 'the upstream never saw a refused request');
  assert.is((await fetchRaw(`${api.url}/orders`, { headers: { authorization: 'Bearer good' } })).status, 200);
  assert.is(upstream.requests.length, 1);

  const chat = createRelay({ targetBaseUrl: wsUrl, stages: [stage], websocket: websocket() });
  const chatServer = await serveRelay(chat);
  chatServer.server.on('upgrade', chat.upgrade);
  const wsBase = chatServer.url.replace('http:', 'ws:');
  const rejected = new WebSocket(`${wsBase}/room`);
  rejected.on('error', () => {});
  const [, response] = await once(rejected, 'unexpected-response');
  assert.is((response as http.IncomingMessage).statusCode, 401);
  rejected.terminate();
  const accepted = new WebSocket(`${wsBase}/room`, { headers: { authorization: 'Bearer good' } });
  assert.is(String((await once(accepted, 'message'))[0]), 'welcome');
  accepted.close();
  await once(accepted, 'close');

  await chatServer.close();
  wss.close();
  await close(wsHttp);
  await api.close();
  await upstream.close();
});

test('stage order: outside the retry once per request, inside it once per attempt', async () => {
  let calls = 0;
  const upstream = await startUpstream((req, res) => {
    calls++;
    if (calls === 1) res.writeHead(503).end();
    else res.writeHead(200, { 'set-cookie': 'sid=1; Domain=auth.internal; Path=/' }).end(JSON.stringify(req.headers));
  });
  let verified = 0;
  let tokens = 0;
  const relay = orderedRelay(upstream.url, (token) => (verified++, token === 'good'), () => `t${++tokens}`);
  const gateway = await serveRelay(relay);
  assert.is((await fetchRaw(`${gateway.url}/auth/me`)).status, 401);
  assert.is(calls, 0);

  const response = await fetchRaw(`${gateway.url}/auth/me`, { headers: { authorization: 'Bearer good' } });
  assert.is(response.status, 200);
  assert.equal(response.headers['set-cookie'], ['sid=1; Path=/'], 'cookies rewritten once, on the final response');
  assert.equal(upstream.requests.map((seen) => seen.headers['x-attempt-token']), ['t1', 't2'], 'a fresh token per attempt');
  const ids = upstream.requests.map((seen) => seen.headers['x-request-id']);
  assert.ok(ids[0] !== undefined && ids[0] === ids[1], 'one request id for both attempts');
  assert.is(verified, 1, 'the token was checked once for two attempts');
  await gateway.close();
  await upstream.close();
});

test('typicalOrder: the one-line order of the package READMEs', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'set-cookie': 'a=1; Domain=x.internal' }).end());
  const gateway = await serveRelay(typicalOrder(upstream.url));
  const response = await fetchRaw(`${gateway.url}/`, { headers: { 'x-internal-token': 'secret' } });
  assert.equal(response.headers['set-cookie'], ['a=1']);
  assert.is(upstream.requests[0]!.headers['x-internal-token'], undefined);
  await gateway.close();
  await upstream.close();
});

test.run();
