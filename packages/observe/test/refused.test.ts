import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, memoryLogger, sendRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { observe } from '../src/index.js';

// Issue 18: requests the relay refuses before any stage runs are logged and counted too.

test('a request refused before the stages (404 outside the mount, 400 for a bad path) gets an access log line and a count', async () => {
  const upstream = await startUpstream();
  const written: string[] = [];
  const registry = new Registry();
  const obs = observe({ accessLog: { stream: { write: (line: string) => written.push(line) } }, metrics: { registry, relay: 'refusals' } });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', stages: [obs.request, obs.attempt] }));
  // Another relay's refusals are not this one's.
  const other = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api' }));
  assert.is((await fetchRaw(`${served.url}/elsewhere?token=x`)).status, 404);
  assert.is((await fetchRaw(`${served.url}/api/..%2fadmin`)).status, 400);
  assert.is((await fetchRaw(`${served.url}/api/ok`)).status, 200);
  assert.is((await fetchRaw(`${other.url}/elsewhere`)).status, 404);
  assert.ok(await waitFor(() => written.length === 3, 2000), written.join(''));
  const lines = written.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.equal(
    lines.map((line) => [line.method, line.path, line.status, line.code, line.attempts]),
    [
      ['GET', '/elsewhere', 404, 'ERR_NOT_MOUNTED', 0],
      ['GET', '/api/..%2fadmin', 400, 'ERR_BAD_PATH', 0],
      ['GET', '/api/ok', 200, null, 1],
    ],
  );
  assert.is(lines[0]!.client, '127.0.0.1');
  const text = await registry.metrics();
  assert.match(text, /relay_requests_total\{relay="refusals",route="",method="GET",status_class="4xx",target="[^"]+"\} 2/);
  assert.match(text, /relay_requests_total\{relay="refusals",route="",method="GET",status_class="2xx",target="[^"]+"\} 1/);
  await served.close();
  await other.close();
  await upstream.close();
});

test('a refused request\'s line counts the error body sent, and never shows the password of an absolute-form target', async () => {
  const upstream = await startUpstream();
  const written: string[] = [];
  const logger = memoryLogger();
  const obs = observe({ accessLog: { stream: { write: (line: string) => written.push(line) } } });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', logger, stages: [obs.request, obs.attempt] }));
  const outside = await fetchRaw(`${served.url}/elsewhere`);
  const port = Number(new URL(served.url).port);
  const answer = await sendRaw(port, 'GET http://admin:hunter2@internal.example/api/p?token=1 HTTP/1.1\r\nHost: internal.example\r\nConnection: close\r\n\r\n');
  assert.match(answer, /^HTTP\/1.1 400 /);
  assert.ok(await waitFor(() => written.length === 2, 2000), written.join(''));
  const [first, second] = written.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.is(first!.status, 404);
  assert.is(first!.bytesOut, Buffer.byteLength(outside.text));
  assert.is(second!.status, 400);
  assert.is(second!.path, 'http://internal.example/api/p');
  // Neither the access line nor the relay's own warning carries the password.
  for (const text of [...written, JSON.stringify(logger.lines)]) assert.not.match(text, /hunter2|admin:/);
  assert.is(upstream.requests.length, 0);
  await served.close();
  await upstream.close();
});

test('a refused request behind a trusted proxy is logged with the forwarded client; from an untrusted peer, with the peer', async () => {
  const upstream = await startUpstream();
  const written: string[] = [];
  const obs = observe({ accessLog: { stream: { write: (line: string) => written.push(line) } } });
  const trusting = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', trustProxy: ['loopback'], stages: [obs.request, obs.attempt] }));
  const edge = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', stages: [obs.request, obs.attempt] }));
  try {
    const headers = { 'x-forwarded-for': '198.51.100.9, 203.0.113.7' };
    assert.is((await fetchRaw(`${trusting.url}/elsewhere`, { headers })).status, 404);
    assert.is((await fetchRaw(`${edge.url}/elsewhere`, { headers })).status, 404);
    assert.ok(await waitFor(() => written.length === 2));
    const lines = written.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(
      lines.map((line) => [line.status, line.client]),
      [
        [404, '203.0.113.7'],
        [404, '127.0.0.1'],
      ],
    );
  } finally {
    await trusting.close();
    await edge.close();
    await upstream.close();
  }
});

test.run();
