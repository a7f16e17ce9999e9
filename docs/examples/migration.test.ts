import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { migratedGateway, migratedTestRelay } from './migration.js';

test('every translated parameter does what its Python counterpart did (and what changed, changed)', async () => {
  let calls = 0;
  const auth = await startUpstream((req, res, seen) => {
    calls++;
    if (req.url === '/api/v1/flaky' && calls === 1) {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'set-cookie': ['a=1; Domain=auth.internal', 'b=2; Domain=auth.internal'], 'x-debug-info': 'internal' });
    res.end(JSON.stringify({ url: req.url, headers: req.headers, body: seen.body.toString() }));
  });
  const logger = memoryLogger();
  const { server, stop } = await migratedGateway(auth.url, 0, logger);
  if (!server.listening) await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const flaky = await fetchRaw(`${base}/auth/flaky`, { headers: { 'x-internal-token': 't', host: 'app.example' } });
  assert.is(flaky.status, 200);
  const echoed = JSON.parse(flaky.text);
  assert.is(echoed.url, '/api/v1/flaky', 'mount stripped, upstream_prefix joined');
  assert.is(echoed.headers.host, `127.0.0.1:${auth.port}`, 'preserve_host=False');
  assert.is(echoed.headers['x-service'], 'main-app');
  assert.is(echoed.headers['x-internal-token'], undefined);
  assert.is(echoed.headers['x-forwarded-host'], 'app.example');
  assert.equal(flaky.headers['set-cookie'], ['a=1', 'b=2'], 'Domain dropped, two cookies stay two');
  assert.is(flaky.headers['x-debug-info'], undefined);
  assert.ok(logger.lines.some((line) => line.message === 'retrying upstream request'), 'the logger saw the retry');

  calls = 0;
  const post = await fetchRaw(`${base}/auth/flaky`, { method: 'POST', body: 'x=1' });
  assert.is(post.status, 503, 'POST is not retried by default (Python retried it)');

  process.removeListener('SIGTERM', stop);
  await stop();
  await auth.close();
});

test('transport=httpx.ASGITransport(app) → inMemoryTransport(app)', async () => {
  const upstreamApp = express().get('/test', (_req, res) => {
    res.json({ message: 'Hello from upstream' });
  });
  const gateway = await serveRelay(migratedTestRelay(upstreamApp));
  assert.equal(JSON.parse((await fetchRaw(`${gateway.url}/proxy/test`)).text), { message: 'Hello from upstream' });
  await gateway.close();
});

test.run();
