import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { createRelay } from '@relay/core';
import { retry } from '../src/index.js';

test('a deadline past node\'s timer limit (2^31-1 ms) is a RangeError: node would fire it after 1 ms and every request would get 504', () => {
  assert.throws(() => retry({ deadline: 30 * 24 * 3600 * 1000 }), (error: Error) => error instanceof RangeError && /^deadline must be at most 2147483647 ms/.test(error.message));
  retry({ deadline: 2 ** 31 - 1 });
});

test('the deadline bounds all attempts: a silent upstream gives 504 ERR_DEADLINE long before the read timeout', async () => {
  let upstreamClosed = 0;
  const upstream = await startUpstream((req) => {
    req.socket.on('close', () => upstreamClosed++);
  });
  const logger = memoryLogger();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, logger, timeout: { read: 10_000 }, stages: [retry({ maxRetries: 3, deadline: 400 })] }),
  );
  const started = performance.now();
  const response = await fetchRaw(`${served.url}/slow`);
  const elapsed = performance.now() - started;
  assert.is(response.status, 504);
  assert.ok(response.text.includes('ERR_DEADLINE'), response.text);
  assert.not.ok(response.text.includes(String(upstream.port)));
  assert.ok(elapsed >= 350 && elapsed < 3000, `${elapsed} ms, expected about 400`);
  assert.ok(await waitFor(() => upstreamClosed === 1, 1000), 'the attempt in flight was aborted');
  assert.is(upstream.requests.length, 1);
  assert.ok(logger.lines.some((l) => l.fields.code === 'ERR_DEADLINE'), 'a log line names the deadline');
  await served.close();
  await upstream.close();
});

test('the deadline passing during a retry attempt gives 504 ERR_DEADLINE', async () => {
  const upstream = await startUpstream((_req, res) => {
    if (upstream.requests.length === 1) res.writeHead(502, { 'content-length': 0 }).end();
    // later attempts hang
  });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, backoffFactor: 50, deadline: 500 })] }),
  );
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 504);
  assert.ok(response.text.includes('ERR_DEADLINE'));
  assert.is(upstream.requests.length, 2);
  await served.close();
  await upstream.close();
});

test('a backoff that would end after the deadline is not waited: the last upstream response passes on at once', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(503, { 'content-length': 4 }).end('busy'));
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, backoffFactor: 1000, deadline: 600 })] }),
  );
  const started = performance.now();
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 503);
  assert.is(response.text, 'busy');
  assert.ok(performance.now() - started < 550, 'answered without waiting out the backoff');
  assert.is(upstream.requests.length, 1);
  await served.close();
  await upstream.close();
});

test('the deadline applies to a request that cannot be retried (a POST by default) too', async () => {
  const upstream = await startUpstream(() => {});
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, deadline: 300 })] }));
  const response = await fetchRaw(`${served.url}/`, { method: 'POST', body: 'x' });
  assert.is(response.status, 504);
  assert.ok(response.text.includes('ERR_DEADLINE'));
  await served.close();
  await upstream.close();
});

test('the deadline stops at the response head: a slow body after a quick head streams whole', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('start ');
    setTimeout(() => res.end('end'), 600);
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 1, deadline: 300 })] }));
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 200);
  assert.ok(response.complete);
  assert.is(response.text, 'start end');
  await served.close();
  await upstream.close();
});

test('the deadline also bounds a body that is still being buffered: 504 ERR_DEADLINE, the upstream never reached', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, timeout: { write: 10_000 }, stages: [retry({ maxRetries: 2, methods: ['PUT'], deadline: 300 })] }),
  );
  const socket = connect(served.port, '127.0.0.1');
  let raw = '';
  socket.on('data', (chunk) => (raw += chunk));
  const started = performance.now();
  socket.write('PUT /doc HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\nonly part');
  assert.ok(await waitFor(() => raw.includes('\r\n\r\n'), 3000), 'an answer came');
  const elapsed = performance.now() - started;
  assert.match(raw, /^HTTP\/1\.1 504 /);
  assert.ok(raw.includes('ERR_DEADLINE'));
  assert.ok(elapsed >= 250 && elapsed < 3000, `${elapsed} ms`);
  assert.is(upstream.requests.length, 0);
  socket.destroy();
  await served.close();
  await upstream.close();
});

test.run();
