import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import http2, { constants } from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, h2Request, listenHttp2, memoryLogger, startUpstream, tlsFixture, waitFor } from '@relay/testkit';
import { createRelay, http2Transport, relayChannels, type Relay, type RelayOptions, type RequestEndMessage, type Stage } from '../src/index.js';

// Issue 15, client side: relay.handle as the listener of node:http2 servers (the compatibility API).

type Server = http2.Http2Server | http2.Http2SecureServer;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function h2c(options: Omit<RelayOptions, 'targetBaseUrl'>, target: string): Promise<{ relay: Relay; server: http2.Http2Server; session: http2.ClientHttp2Session }> {
  const relay = createRelay({ targetBaseUrl: target, ...options });
  const server = http2.createServer(relay.handle);
  const port = await listen(server);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  return { relay, server, session };
}

test('h2c: pseudo-headers become the request line and Host, bodies pass both ways, nothing connection-specific comes back', async () => {
  const upstream = await startUpstream();
  // A stage that adds headers HTTP/2 forbids: they must not reach the HTTP/2 response (it would throw).
  const badHeaders: Stage = {
    name: 'bad-headers',
    wrap: (next) =>
      async function badHeaders(request) {
        const response = await next(request);
        return { ...response, headers: { ...response.headers, connection: 'close', 'keep-alive': 'timeout=5', te: 'gzip', 'http2-settings': 'AAMAAABk', 'x-kept': 'yes' } };
      },
  };
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on('warning', onWarning);
  const { relay, server, session } = await h2c({ stages: [badHeaders] }, upstream.url);
  const port = (server.address() as AddressInfo).port;
  const answer = await h2Request(session, { ':method': 'POST', ':path': '/items/7?x=1&y=%20', 'content-type': 'text/plain' }, 'hello over h2');
  assert.is(answer.headers[':status'], 200);
  assert.is(answer.headers['x-kept'], 'yes');
  assert.is(answer.headers.connection, undefined);
  assert.is(answer.headers['keep-alive'], undefined);
  assert.is(answer.headers.te, undefined);
  assert.is(answer.headers['http2-settings'], undefined);
  const seen = upstream.requests[0]!;
  assert.is(seen.method, 'POST');
  assert.is(seen.url, '/items/7?x=1&y=%20', 'the query byte for byte');
  assert.is(seen.body.toString(), 'hello over h2', 'a body without Content-Length is sent on (chunked)');
  assert.ok(!seen.rawHeaders.some((name, index) => index % 2 === 0 && name.startsWith(':')), `no pseudo-header upstream: ${seen.rawHeaders}`);
  assert.is(seen.headers.host, `127.0.0.1:${upstream.port}`);
  assert.is(seen.headers['x-forwarded-host'], `127.0.0.1:${port}`, ':authority is the client-facing host');
  assert.is(seen.headers['x-forwarded-proto'], 'http');
  // A GET whose HEADERS frame ends the stream has no body.
  await h2Request(session, { ':method': 'GET', ':path': '/plain' });
  assert.is(upstream.requests[1]!.headers['content-length'], undefined);
  assert.is(upstream.requests[1]!.headers['transfer-encoding'], undefined);
  assert.equal(warnings, [], 'no "status message is not supported" warning');
  process.off('warning', onWarning);
  session.close();
  await closeServer(server);
  await relay.shutdown();
  await upstream.close();
});

test('h2c: the relay’s own error answers (400, 404, 503) are valid HTTP/2 responses', async () => {
  const upstream = await startUpstream();
  const { relay, server, session } = await h2c({ mountPath: '/api' }, upstream.url);
  const traversal = await h2Request(session, { ':method': 'GET', ':path': '/api/..%2fadmin' });
  assert.is(traversal.headers[':status'], 400);
  assert.match(traversal.body, /ERR_BAD_PATH/);
  assert.is((await h2Request(session, { ':method': 'GET', ':path': '/elsewhere' })).headers[':status'], 404);
  await relay.startup();
  await relay.shutdown();
  const refused = await h2Request(session, { ':method': 'GET', ':path': '/api/x' });
  assert.is(refused.headers[':status'], 503);
  assert.is(refused.headers['retry-after'], '1');
  assert.is(refused.headers.connection, undefined);
  assert.is(upstream.requests.length, 0);
  session.close();
  await closeServer(server);
  await upstream.close();
});

test('TLS: createSecureServer with a self-signed certificate; X-Forwarded-Proto is https', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const server = http2.createSecureServer({ ...tlsFixture }, relay.handle);
  const port = await listen(server);
  const session = http2.connect(`https://localhost:${port}`, { ca: tlsFixture.cert });
  const answer = await h2Request(session, { ':method': 'GET', ':path': '/secure' });
  assert.is(answer.headers[':status'], 200);
  assert.is(upstream.requests[0]!.headers['x-forwarded-proto'], 'https');
  session.close();
  await closeServer(server);
  await relay.shutdown();
  await upstream.close();
});

test('allowHTTP1: an HTTP/1.1 client and an HTTP/2 client on the same server both get relayed', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const server = http2.createSecureServer({ ...tlsFixture, allowHTTP1: true }, relay.handle);
  const port = await listen(server);
  const session = http2.connect(`https://localhost:${port}`, { ca: tlsFixture.cert });
  const overH2 = await h2Request(session, { ':method': 'GET', ':path': '/h2' });
  const overH1 = await new Promise<{ status: number; version: string; connection: string | undefined }>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/h1', servername: 'localhost', ca: tlsFixture.cert, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, version: res.httpVersion, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.is(overH2.headers[':status'], 200);
  assert.equal([overH1.status, overH1.version], [200, '1.1']);
  assert.equal(upstream.requests.map((r) => r.url), ['/h2', '/h1']);
  session.close();
  await closeServer(server);
  await relay.shutdown();
  await upstream.close();
});

test('a stream reset and a GOAWAY from the client abort the upstream attempt, as a disconnect does', async () => {
  const aborted: string[] = [];
  const upstream = await startUpstream((req, res) => {
    req.on('close', () => {
      if (!res.writableEnded) aborted.push(req.url ?? '');
    });
    // Never answers: only the client's leaving ends these.
  });
  const logger = memoryLogger();
  const { relay, server, session } = await h2c({ logger }, upstream.url);
  const reset = session.request({ ':method': 'GET', ':path': '/reset' });
  reset.on('error', () => {});
  await waitFor(() => upstream.requests.length === 1, 3000);
  reset.close(constants.NGHTTP2_CANCEL);
  assert.ok(await waitFor(() => aborted.includes('/reset'), 3000), 'RST_STREAM aborted the upstream request');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000), 'nothing left in flight');

  const pending = session.request({ ':method': 'GET', ':path': '/goaway' });
  pending.on('error', () => {});
  await waitFor(() => upstream.requests.length === 2, 3000);
  session.destroy(undefined, constants.NGHTTP2_CANCEL);
  assert.ok(await waitFor(() => aborted.includes('/goaway'), 3000), 'the session going away aborted the upstream request');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
  await delay(50);
  assert.not.ok(logger.lines.some((line) => line.level === 'error'), JSON.stringify(logger.lines));
  await closeServer(server);
  await relay.shutdown();
  await upstream.close();
});

/** An h2c upstream whose handler gets each stream; its sessions are destroyed on close. */
function h2Upstream(handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void) {
  return listenHttp2(http2.createServer(handler));
}

test('an HTTP/2 client that resets its stream, before the head or mid-body, ends the http2Transport upstream stream at once: request:end says 499 or not completed', async () => {
  const upstreamClosed: string[] = [];
  const chunk = Buffer.alloc(16_384, 'a');
  const upstream = await h2Upstream((req, res) => {
    res.stream.on('close', () => upstreamClosed.push(req.url));
    // /head never answers; /body sends a chunk and then holds the stream open.
    if (req.url === '/body') res.writeHead(200).write(chunk);
  });
  const ends: RequestEndMessage[] = [];
  const onEnd = (message: unknown) => ends.push(message as RequestEndMessage);
  subscribe(relayChannels.requestEnd, onEnd);
  const { relay, server, session } = await h2c({ transport: http2Transport(), timeout: { read: 30_000 } }, upstream.url);
  for (const path of ['/head', '/body']) {
    const stream = session.request({ ':method': 'GET', ':path': path });
    stream.on('error', () => {});
    await new Promise<void>((resolve) => {
      if (path === '/head') setTimeout(resolve, 100);
      else stream.once('data', () => resolve());
    });
    stream.close(constants.NGHTTP2_CANCEL);
    assert.ok(await waitFor(() => upstreamClosed.includes(path), 3000), `${path}: the upstream stream was ended, not left to the read timeout`);
  }
  assert.ok(await waitFor(() => relay.inFlight === 0 && ends.length === 2, 3000));
  unsubscribe(relayChannels.requestEnd, onEnd);
  assert.equal(ends.map((end) => [end.status, end.completed]), [[499, false], [200, false]]);
  session.destroy();
  await closeServer(server);
  await relay.shutdown();
  await upstream.close();
});

test('an upstream body that breaks off resets the HTTP/2 client stream with INTERNAL_ERROR: the client never sees a clean, shorter end', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 50);
  });
  const { relay, server, session } = await h2c({}, upstream.url);
  const stream = session.request({ ':method': 'GET', ':path': '/broken' });
  let ended = false;
  stream.on('error', () => {});
  stream.on('end', () => (ended = true));
  stream.resume();
  assert.ok(await waitFor(() => stream.closed, 3000));
  assert.equal([ended, stream.rstCode], [false, constants.NGHTTP2_INTERNAL_ERROR]);
  session.destroy();
  await closeServer(server);
  await relay.shutdown();
  await upstream.close();
});

test.run();
