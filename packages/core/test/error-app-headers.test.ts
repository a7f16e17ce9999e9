// The relay's own error answers (502, 504, 503, 500) keep the headers the app set on the response
// before handing it to the relay (CORS by a middleware, a request id), as upstream answers do and
// as nginx's `add_header … always` sends them: without them a browser cannot read the error. Headers
// that describe a body the app expected (Content-Type, Content-Length, ETag …) are not sent with it.
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, closedPort, fetchRaw, h2Request, listen, listenHttp2, startUpstream, type Upstream } from '@relay/testkit';
import { createRelay, type Relay, type RelayOptions, type Stage } from '../src/index.js';

const origin = 'https://app.example';

/** What a CORS middleware and a body-minded app set before the relay. */
function setAppHeaders(res: ServerResponse | http2.Http2ServerResponse): void {
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('access-control-expose-headers', 'x-request-id');
  res.setHeader('vary', 'Origin');
  res.setHeader('x-request-id', 'req-42');
  res.setHeader('content-security-policy', "default-src 'none'");
  // Representation headers for a body that never comes: they must not describe the error's.
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', '999');
  res.setHeader('content-encoding', 'gzip');
  res.setHeader('etag', '"v1"');
  res.setHeader('last-modified', 'Wed, 21 Oct 2015 07:28:00 GMT');
  res.setHeader('content-range', 'bytes 0-998/999');
  // The error's own headers win over the app's.
  res.setHeader('cache-control', 'public, max-age=600');
}

/** A real front server whose handler sets the app's headers, then hands the request to `relay.handle`. */
async function front(options: RelayOptions): Promise<{ url: string; relay: Relay; close(): Promise<void> }> {
  const relay = createRelay(options);
  await relay.startup();
  const listener: RequestListener = (req: IncomingMessage, res: ServerResponse) => {
    setAppHeaders(res);
    relay.handle(req, res);
  };
  const server = createServer(listener);
  const url = await listen(server);
  return {
    url,
    relay,
    close: async () => {
      await close(server);
      await relay.shutdown({ timeout: 1000 });
    },
  };
}

function assertAppHeadersKept(headers: Record<string, unknown>, label: string): void {
  assert.is(headers['access-control-allow-origin'], origin, `${label}: CORS kept`);
  assert.is(headers['access-control-expose-headers'], 'x-request-id', `${label}: CORS kept`);
  assert.is(headers.vary, 'Origin', label);
  assert.is(headers['x-request-id'], 'req-42', label);
  assert.is(headers['content-security-policy'], "default-src 'none'", label);
}

function assertErrorRepresentation(headers: Record<string, unknown>, body: string, label: string): void {
  assert.is(headers['content-type'], 'text/plain; charset=utf-8', `${label}: the error's own type`);
  assert.is(headers['content-length'], String(Buffer.byteLength(body)), `${label}: the error's own length`);
  assert.is(headers['cache-control'], 'no-store', `${label}: the error's own cache-control`);
  for (const name of ['content-encoding', 'etag', 'last-modified', 'content-range']) assert.is(headers[name], undefined, `${label}: no ${name}`);
}

test('502 for an unreachable target keeps the CORS and other app headers, not the app representation headers', async () => {
  const served = await front({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}` });
  for (const method of ['GET', 'POST']) {
    const response = await fetchRaw(`${served.url}/items`, { method, body: method === 'POST' ? '{"a":1}' : undefined, headers: { origin } });
    assert.is(response.status, 502, method);
    assert.match(response.text, /ERR_UPSTREAM_UNREACHABLE/);
    assert.not.match(response.text, /127\.0\.0\.1/);
    assertAppHeadersKept(response.headers, `${method} 502`);
    assertErrorRepresentation(response.headers, response.text, `${method} 502`);
  }
  await served.close();
});

test('504 for a read timeout keeps the app headers', async () => {
  const silent: Upstream = await startUpstream(() => {
    // Never answers: the relay's read timeout does.
  });
  const served = await front({ targetBaseUrl: silent.url, timeout: { read: 200 } });
  const response = await fetchRaw(`${served.url}/slow`, { headers: { origin } });
  assert.is(response.status, 504);
  assert.match(response.text, /ERR_READ_TIMEOUT/);
  assertAppHeadersKept(response.headers, '504');
  assertErrorRepresentation(response.headers, response.text, '504');
  await served.close();
  await silent.close();
});

test('503 from a relay that was shut down keeps the app headers next to its own Retry-After and Connection: close', async () => {
  const upstream = await startUpstream();
  const served = await front({ targetBaseUrl: upstream.url });
  await served.relay.shutdown({ timeout: 1000 });
  const response = await fetchRaw(`${served.url}/x`, { headers: { origin } });
  assert.is(response.status, 503);
  assert.match(response.text, /ERR_SHUTTING_DOWN/);
  assert.is(response.headers['retry-after'], '1');
  assert.is(response.headers.connection, 'close');
  assertAppHeadersKept(response.headers, '503');
  assertErrorRepresentation(response.headers, response.text, '503');
  assert.is(upstream.requests.length, 0);
  await served.close();
  await upstream.close();
});

test('a head that fails half-way (a stage set an invalid header value): the 500 keeps the app headers and none of the failed head', async () => {
  const upstream = await startUpstream();
  const invalid: Stage = {
    name: 'invalid',
    wrap: () =>
      async function invalidHeader() {
        return { status: 200, statusMessage: '', headers: { 'x-from-stage': 'fine', 'x-broken': 'a\nb' }, body: null };
      },
  };
  const served = await front({ targetBaseUrl: upstream.url, stages: [invalid], logger: { debug() {}, info() {}, warn() {}, error() {} } });
  const response = await fetchRaw(`${served.url}/x`, { headers: { origin } });
  assert.is(response.status, 500);
  assert.match(response.text, /ERR_INTERNAL/);
  assertAppHeadersKept(response.headers, '500');
  assertErrorRepresentation(response.headers, response.text, '500');
  assert.is(response.headers['x-from-stage'], undefined, 'nothing of the head that failed');
  await served.close();
  await upstream.close();
});

test('express: a CORS middleware before relay.handle; the 502 and the 504 carry its headers', async () => {
  const silent: Upstream = await startUpstream(() => {});
  const down = createRelay({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}` });
  const slow = createRelay({ targetBaseUrl: silent.url, timeout: { read: 200 } });
  const app = express();
  app.use((_req, res, next) => {
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-allow-credentials', 'true');
    next();
  });
  app.use('/down', (req, res) => down.handle(req, res));
  app.use('/slow', (req, res) => slow.handle(req, res));
  const server = createServer(app);
  const url = await listen(server);
  const refused = await fetchRaw(`${url}/down/items`, { headers: { origin } });
  assert.is(refused.status, 502);
  assert.is(refused.headers['access-control-allow-origin'], origin);
  assert.is(refused.headers['access-control-allow-credentials'], 'true');
  const timedOut = await fetchRaw(`${url}/slow/items`, { headers: { origin } });
  assert.is(timedOut.status, 504);
  assert.is(timedOut.headers['access-control-allow-origin'], origin);
  assert.is(timedOut.headers['access-control-allow-credentials'], 'true');
  await close(server);
  await down.shutdown({ timeout: 1000 });
  await slow.shutdown({ timeout: 1000 });
  await silent.close();
});

test('HTTP/2 front: the 502 for an unreachable target keeps the app headers', async () => {
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}` });
  const server = await listenHttp2(
    http2.createServer((req, res) => {
      setAppHeaders(res);
      relay.handle(req, res);
    }),
  );
  const session = http2.connect(server.url);
  session.on('error', () => {});
  const { headers, body } = await h2Request(session, { ':path': '/items', origin });
  assert.is(headers[':status'], 502);
  assertAppHeadersKept(headers, 'h2 502');
  assertErrorRepresentation(headers, body, 'h2 502');
  session.destroy();
  await server.close();
  await relay.shutdown({ timeout: 1000 });
});

test.run();
