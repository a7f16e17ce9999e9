import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { productionGateway, relayFromEnv } from './best-practices.js';

test('relayFromEnv reads UPSTREAM_URL', async () => {
  const upstream = await startUpstream();
  const saved = process.env.UPSTREAM_URL;
  process.env.UPSTREAM_URL = upstream.url;
  try {
    const gateway = await serveRelay(relayFromEnv());
    await fetchRaw(`${gateway.url}/ping`);
    assert.is(upstream.requests[0]!.url, '/ping');
    await gateway.close();
  } finally {
    if (saved === undefined) delete process.env.UPSTREAM_URL;
    else process.env.UPSTREAM_URL = saved;
    await upstream.close();
  }
  assert.is(relayFromEnv().target.origin, saved === undefined ? 'http://localhost:8000' : new URL(saved).origin);
});

test('productionGateway: health answered locally, /api relayed under the prefix, SIGTERM drains and closes', async () => {
  let calls = 0;
  const upstream = await startUpstream((req, res) => {
    calls++;
    res.writeHead(calls === 1 ? 503 : 200, { 'set-cookie': 'sid=1; Domain=svc.internal' }).end(`${req.url} ${req.headers['x-internal-token'] ?? 'no token'}`);
  });
  const lines: string[] = [];
  const write = process.stdout.write;
  const { server, stop } = await productionGateway({ UPSTREAM_URL: upstream.url, UPSTREAM_PREFIX: '/v1', PORT: '0' });
  if (!server.listening) await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  assert.is((await fetchRaw(`${base}/healthz`)).text, 'ok');
  assert.is(calls, 0, 'the health check never reaches the upstream');
  process.stdout.write = ((chunk: string) => lines.push(chunk) > 0) as typeof process.stdout.write;
  const response = await fetchRaw(`${base}/api/items`, { headers: { 'x-internal-token': 'secret' } });
  process.stdout.write = write;
  assert.equal([response.status, response.text, response.headers['set-cookie']], [200, '/v1/items no token', ['sid=1']]);
  assert.is(calls, 2, 'the 503 was retried');
  assert.ok(lines.some((line) => JSON.parse(line).msg === 'retrying upstream request'), 'a JSON log line for the retry');

  process.removeListener('SIGINT', stop);
  process.emit('SIGTERM'); // the handler the gateway installed
  await once(server, 'close');
  await upstream.close();
});

test.run();
