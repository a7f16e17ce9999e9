import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, httpTransport } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { gotRelay, inMemoryRelay, timed, tunedHttpRelay } from './transports.js';

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

test.run();
