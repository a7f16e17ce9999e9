// Review s38c (issue 15): HTTP/2 on both sides, as a production user and peers' suites would
// exercise it: an HTTP/2 front over an HTTP/1.1 upstream, and http2Transport's timeouts and sessions.
import http2 from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, listen, listenHttp2, memoryLogger, sendRaw, serveRelay } from '@relay/testkit';
import { createRelay, http2Transport } from '../src/index.js';
import { h2FrontSession, type Closers } from './http2-helpers.js';

const test = suite('review s38c: HTTP/2');
const closers: Closers = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

/** A raw TCP upstream answering every request with `answer`, byte for byte. */
async function rawUpstream(answer: string): Promise<string> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.on('data', () => socket.write(answer));
  });
  const url = await listen(server);
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return url;
}

test('a 204 whose HTTP/1.1 upstream wrongly sent Content-Length: 5 reaches an HTTP/2 client as a valid 204, not a PROTOCOL_ERROR reset (the HTTP/1.1 front drops it)', async () => {
  // RFC 9110 §8.6: a server MUST NOT send Content-Length in a 204. nghttp2 (every node:http2 and
  // curl client) treats a 204 carrying a non-zero Content-Length as malformed and resets the stream.
  const url = await rawUpstream('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Kept: yes\r\n\r\n');
  const relay = createRelay({ targetBaseUrl: url });
  const session = await h2FrontSession(closers, relay);
  const stream = session.request({ ':method': 'DELETE', ':path': '/item/1' });
  stream.end();
  const answer = await new Promise<{ status: unknown; kept: unknown; rstCode: number | undefined; error: string | null }>((resolve) => {
    let headers: http2.IncomingHttpHeaders = {};
    let error: string | null = null;
    stream.on('response', (h) => (headers = h));
    stream.on('error', (e: Error) => (error = e.message));
    stream.resume();
    stream.on('close', () => resolve({ status: headers[':status'], kept: headers['x-kept'], rstCode: stream.rstCode, error }));
  });
  assert.is(answer.error, null, `stream error: ${answer.error}`);
  assert.is(answer.status, 204);
  assert.is(answer.kept, 'yes');
  assert.is(answer.rstCode, http2.constants.NGHTTP2_NO_ERROR);
});

test('http2Transport: a client whose request body stops coming is at fault: 408 ERR_CLIENT_TIMEOUT after timeout.write, as httpTransport answers, never a 504 blamed on the upstream', async () => {
  // The upstream reads every byte it is sent and answers at the body's end, which never comes.
  const upstream = await listenHttp2(
    http2.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('done'));
    }),
  );
  closers.push(() => upstream.close());
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, transport: http2Transport(), timeout: { write: 300, read: 5000 } }));
  closers.push(() => served.close());
  const raw = await sendRaw(served.port, 'POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nab', 3000);
  assert.match(raw, /^HTTP\/1\.1 408 /, JSON.stringify(raw.slice(0, 200)));
  assert.ok(raw.includes('ERR_CLIENT_TIMEOUT'), raw);
  assert.not.ok(
    logger.lines.some((line) => line.fields.code === 'ERR_WRITE_TIMEOUT'),
    'no upstream write timeout logged for a client that stopped sending',
  );
});

test('http2Transport({ maxSessions: 2 }): when the second session cannot be opened while the first is full, a waiting request is answered within about timeout.pool and the relay does not reconnect in a loop', async () => {
  // One stream per session; the first session is busy for 4 s with a slow call.
  const upstreamServer = http2.createServer({ settings: { maxConcurrentStreams: 1 } }, (_req, res) => {
    const timer = setTimeout(() => res.end('held'), 4000);
    res.on('close', () => clearTimeout(timer));
  });
  const upstream = await listenHttp2(upstreamServer);
  closers.push(() => upstream.close());
  const port = Number(new URL(upstream.url).port);
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, transport: http2Transport({ maxSessions: 2 }), timeout: { pool: 300, connect: 1000 } }),
  );
  closers.push(() => served.close());
  const holding = fetchRaw(`${served.url}/hold`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  // The upstream stops accepting connections (at its connection limit, restarting, …): the first
  // session stays up, every new connection is closed at once.
  upstreamServer.close();
  let attempts = 0;
  const refuser = createNetServer((socket) => {
    attempts++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => refuser.listen(port, '127.0.0.1', () => resolve()));
  closers.push(() => new Promise<void>((resolve) => refuser.close(() => resolve())));
  const started = Date.now();
  const waiting = await fetchRaw(`${served.url}/quick`);
  const elapsed = Date.now() - started;
  const attemptsWhileWaiting = attempts;
  assert.ok(waiting.status === 504 || waiting.status === 502, `status ${waiting.status}: ${waiting.text}`);
  assert.ok(elapsed < 2000, `answered after ${elapsed} ms (timeout.pool 300, connect 1000)`);
  assert.ok(attemptsWhileWaiting < 50, `${attemptsWhileWaiting} connection attempts while one request waited`);
  assert.is((await holding).text, 'held');
});

test.run();
