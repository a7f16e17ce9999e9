import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { close, closedPort, fetchRaw, listen, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { apiRelay, maintenanceFallback, optionErrors } from './error-handling.js';

test('apiRelay: an unreachable upstream is a 502 with a one-line body naming no address', async () => {
  const port = await closedPort();
  const gateway = await serveRelay(apiRelay(`http://127.0.0.1:${port}`));
  const response = await fetchRaw(`${gateway.url}/api/users`);
  assert.is(response.status, 502);
  assert.is(response.headers['content-type'], 'text/plain; charset=utf-8');
  assert.is(response.text.trim(), '502 Bad Gateway: the upstream service is unreachable (ERR_UPSTREAM_UNREACHABLE)');
  assert.not.match(response.text, String(port));
  await gateway.close();
});

test('a silent upstream is a 504 (ERR_READ_TIMEOUT)', async () => {
  const silent = await startUpstream(() => {}); // never answers
  const relay = createRelay({ targetBaseUrl: silent.url, timeout: { read: 200 } }); // the page's relay, with a short read timeout
  const gateway = await serveRelay(relay);
  const response = await fetchRaw(`${gateway.url}/slow`);
  assert.is(response.status, 504);
  assert.is(response.text.trim(), '504 Gateway Timeout: the upstream service did not answer in time (ERR_READ_TIMEOUT)');
  await gateway.close();
  silent.server.closeAllConnections();
  await silent.close();
});

test("apiRelay: a 503 that stays bad is passed through as the upstream sent it; a traversal is refused", async () => {
  const busy = await startUpstream((_req, res) => res.writeHead(503, { 'retry-after': '0', 'x-upstream': 'yes' }).end('upstream busy'));
  const gateway = await serveRelay(apiRelay(busy.url));
  const response = await fetchRaw(`${gateway.url}/api/report`);
  assert.equal([response.status, response.text, response.headers['x-upstream']], [503, 'upstream busy', 'yes']);
  assert.is(busy.requests.length, 3, 'the first attempt and two retries');
  const traversal = await sendRaw(gateway.port, 'GET /api/../admin HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.ok(traversal.startsWith('HTTP/1.1 400 Bad Request'));
  assert.match(traversal, '(ERR_BAD_PATH)');
  assert.is(busy.requests.length, 3);
  await gateway.close();
  await busy.close();
});

test('maintenanceFallback: 502 becomes a 503 JSON answer with Retry-After; other errors stay as they are', async () => {
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}`, stages: [maintenanceFallback(30)] });
  const gateway = await serveRelay(relay);
  const down = await fetchRaw(`${gateway.url}/x`);
  assert.equal([down.status, down.headers['retry-after'], JSON.parse(down.text)], [503, '30', { error: 'maintenance', retryAfter: 30 }]);
  const traversal = await sendRaw(gateway.port, 'GET /%2e%2e/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.ok(traversal.startsWith('HTTP/1.1 400 '));
  await gateway.close();
});

test('a failure after the response started aborts the client connection', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 50);
  });
  const gateway = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  const response = await fetchRaw(`${gateway.url}/download`);
  assert.is(response.status, 200);
  assert.is(response.complete, false, 'the client sees an incomplete response, never a complete-looking one');
  await gateway.close();
  await upstream.close();
});

test('bad options throw when the relay or stage is built, naming the option', () => {
  assert.equal(optionErrors(), [
    'TypeError: targetBaseUrl must use http: or https: (WebSocket relays derive ws:/wss: from it), got "ftp:"',
    'TypeError: upstreamPrefix must start with "/", got "v1"',
    'RangeError: maxRetries must be a whole number ≥ 0, got -1',
  ]);
});

test('after shutdown(): 503 at once, never a hang', async () => {
  const upstream = await startUpstream();
  const relay = apiRelay(upstream.url);
  const server = http.createServer(relay.handle);
  const url = await listen(server);
  await relay.startup();
  await relay.shutdown();
  const response = await fetchRaw(`${url}/api/users`);
  assert.is(response.status, 503);
  assert.is(response.text.trim(), '503 Service Unavailable: the relay is shutting down (ERR_SHUTTING_DOWN)');
  await close(server);
  await upstream.close();
});

test.run();
