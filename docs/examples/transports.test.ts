import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, httpTransport } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { createServer as createHttp2Server } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { listen, tlsFixture } from '@relay/testkit';
import { gotRelay, grpcBackendRelay, h2OnlyRelay, inMemoryRelay, timed, tunedHttpRelay, undiciRelay } from './transports.js';

test('gotRelay: the beforeRequest hook signs every request; bodies and status pass as with the default transport', async () => {
  const upstream = await startUpstream();
  const gateway = await serveRelay(gotRelay(upstream.url, 'svc-token'));
  const response = await fetchRaw(`${gateway.url}/login?next=%2F`, { method: 'POST', body: 'user=ada' });
  assert.is(response.status, 200);
  const seen = upstream.requests[0]!;
  assert.equal([seen.method, seen.url, seen.body.toString(), seen.headers['x-service-auth']], ['POST', '/login?next=%2F', 'user=ada', 'svc-token']);
  await gateway.close();
  await upstream.close();
});

test('inMemoryRelay: an Express upstream without a port', async () => {
  const gateway = await serveRelay(inMemoryRelay());
  const response = await fetchRaw(`${gateway.url}/proxy/test`);
  assert.equal([response.status, JSON.parse(response.text)], [200, { message: 'Hello from upstream' }]);
  await gateway.close();
});

test('tunedHttpRelay: pool settings and a pool timeout', async () => {
  const upstream = await startUpstream();
  const relay = tunedHttpRelay(upstream.url);
  assert.is(relay.timeouts.pool, 2_000);
  const gateway = await serveRelay(relay);
  assert.is((await fetchRaw(`${gateway.url}/`)).status, 200);
  await gateway.close();
  await upstream.close();
});

test('undiciRelay: requests and bodies pass as with the default transport, on one kept-alive connection', async () => {
  const upstream = await startUpstream();
  let connections = 0;
  upstream.server.on('connection', () => connections++);
  const gateway = await serveRelay(undiciRelay(upstream.url));
  const response = await fetchRaw(`${gateway.url}/orders?page=2`, { method: 'POST', body: 'item=42' });
  assert.is(response.status, 200);
  assert.is((await fetchRaw(`${gateway.url}/orders`)).status, 200);
  const seen = upstream.requests[0]!;
  assert.equal([seen.method, seen.url, seen.body.toString()], ['POST', '/orders?page=2', 'item=42']);
  assert.is(connections, 1);
  await gateway.close();
  await upstream.close();
});

test('timed(): a transport that wraps another sees every attempt', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(204).end());
  const reports: Array<[string, number]> = [];
  const relay = createRelay({ targetBaseUrl: upstream.url, transport: timed(httpTransport(), (path, status, ms) => {
    assert.ok(ms >= 0);
    reports.push([path, status]);
  }) });
  const gateway = await serveRelay(relay);
  await fetchRaw(`${gateway.url}/a`);
  await fetchRaw(`${gateway.url}/b?c=1`);
  assert.equal(reports, [['/a', 204], ['/b?c=1', 204]]);
  await gateway.close();
  await upstream.close();
});

test('grpcBackendRelay: an h2c upstream gets HTTP/2 requests, all on one session', async () => {
  let sessions = 0;
  const upstream = createHttp2Server((req, res) => res.end(`HTTP/${req.httpVersion} ${req.url}`));
  upstream.on('session', () => sessions++);
  const url = await listen(upstream);
  const relay = grpcBackendRelay(url);
  assert.is(relay.timeouts.pool, 1_000);
  const gateway = await serveRelay(relay);
  assert.is((await fetchRaw(`${gateway.url}/a?b=1`)).text, 'HTTP/2.0 /a?b=1');
  assert.is((await fetchRaw(`${gateway.url}/c`)).text, 'HTTP/2.0 /c');
  assert.is(sessions, 1);
  await gateway.close();
  await new Promise((resolve) => upstream.close(resolve));
});

test('h2OnlyRelay: an https upstream without h2 in ALPN is a 502 ERR_UPSTREAM_PROTOCOL', async () => {
  const upstream = createHttpsServer(tlsFixture, (_req, res) => res.end('HTTP/1.1 only'));
  const url = (await listen(upstream)).replace('http:', 'https:');
  const gateway = await serveRelay(h2OnlyRelay(url, tlsFixture.cert));
  const response = await fetchRaw(`${gateway.url}/x`);
  assert.is(response.status, 502);
  assert.ok(response.text.includes('ERR_UPSTREAM_PROTOCOL'), response.text);
  await gateway.close();
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
});

test.run();
