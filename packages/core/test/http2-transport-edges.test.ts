// http2Transport against real node:http2 upstreams, as an operator sees it.
import http2, { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, listen, memoryLogger, waitFor, writeChunks } from '@relay/testkit';
import http from 'node:http';
import { createRelay, http2Transport, type Http2TransportOptions, type Relay, type RelayOptions } from '../src/index.js';
import { silentLogger } from '../src/logger.js';
import { defaultTimeouts, resolveTarget } from '../src/options.js';
import { SessionPool, type PooledSession } from '../src/transport/http2-session.js';
import { h2FrontSession, relayOverHttp2 } from './http2-helpers.js';

const test = suite('http2Transport edges');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

async function h2Upstream(handler: StreamHandler, options: http2.ServerOptions = {}) {
  const sessions: http2.ServerHttp2Session[] = [];
  const sockets: import('node:net').Socket[] = [];
  const server = http2.createServer(options);
  server.on('connection', (socket: import('node:net').Socket) => sockets.push(socket));
  server.on('session', (session) => {
    sessions.push(session);
    session.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    handler(stream, headers);
  });
  const url = await listen(server as unknown as import('node:http').Server);
  const upstream = {
    url,
    server,
    sessions,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
  closers.push(upstream.close);
  return upstream;
}

const relayTo = (url: string, transport?: Http2TransportOptions, options?: Partial<RelayOptions>) => relayOverHttp2(closers, url, transport, options);

const h2Front = (relay: Relay) => h2FrontSession(closers, relay);

function collect(stream: http2.ClientHttp2Stream, limitMs = 5000) {
  return new Promise<{ status: number | undefined; body: string; ended: boolean; rstCode: number | undefined; trailers: IncomingHttpHeaders }>((resolve) => {
    let status: number | undefined;
    let body = '';
    let ended = false;
    let trailers: IncomingHttpHeaders = {};
    const timer = setTimeout(() => finish(), limitMs);
    const finish = () => {
      clearTimeout(timer);
      resolve({ status, body, ended, rstCode: stream.rstCode, trailers });
    };
    stream.setEncoding('utf8');
    stream.on('response', (h) => (status = h[':status'] as number));
    stream.on('data', (c: string) => (body += c));
    stream.on('trailers', (t) => (trailers = t));
    stream.on('end', () => (ended = true));
    stream.on('error', () => {});
    stream.on('close', finish);
  });
}

test('the upstream session dies mid-body: the HTTP/2 client stream is reset, never a clean shorter end', async () => {
  const upstream = await h2Upstream((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.write('partial');
    setTimeout(() => upstream.sockets[0]!.destroy(), 100);
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, transport: http2Transport() });
  const session = await h2Front(relay);
  const stream = session.request({ ':method': 'GET', ':path': '/dies' });
  stream.end();
  const answer = await collect(stream);
  assert.is(answer.status, 200);
  assert.is(answer.body, 'partial');
  assert.is(answer.ended, false, 'the client must not see END_STREAM');
  assert.is(answer.rstCode, constants.NGHTTP2_INTERNAL_ERROR);
});

test('the upstream session dies before any head: POSTs in flight get 502 promptly, nothing hangs', async () => {
  let seen = 0;
  const upstream = await h2Upstream(() => {
    seen++;
    if (seen === 3) setTimeout(() => upstream.sockets[0]!.destroy(), 50);
  });
  const relay = await relayTo(upstream.url, {}, { timeout: { read: 20_000 } });
  const started = Date.now();
  const answers = await Promise.all(Array.from({ length: 3 }, (_, i) => fetchRaw(`${relay.url}/p${i}`, { method: 'POST', body: 'x' })));
  assert.equal(answers.map((a) => a.status), [502, 502, 502]);
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
});

test('upstream graceful GOAWAY (session.close()) with a stream in flight: it completes, and a request sent after the GOAWAY goes on a new session', async () => {
  let first = true;
  const upstream = await h2Upstream((stream, headers) => {
    if (first) {
      first = false;
      stream.session!.close();
      setTimeout(() => {
        stream.respond({ ':status': 200 });
        stream.end('first');
      }, 600);
      return;
    }
    stream.respond({ ':status': 200 });
    stream.end(String(headers[':path']));
  });
  const relay = await relayTo(upstream.url);
  const firstP = fetchRaw(`${relay.url}/one`);
  await waitFor(() => upstream.sessions.length === 1, 2000);
  await delay(200);
  const second = await fetchRaw(`${relay.url}/two`);
  assert.is(second.status, 200, second.text);
  assert.is(second.text, '/two');
  const one = await firstP;
  assert.is(one.status, 200);
  assert.is(one.text, 'first');
  assert.is(upstream.sessions.length, 2);
});

test('a read timeout on one stream does not end the others on the same session', async () => {
  const upstream = await h2Upstream((stream, headers) => {
    if (headers[':path'] === '/never') return;
    stream.respond({ ':status': 200 });
    let n = 0;
    const timer = setInterval(() => {
      stream.write(`${n}.`);
      if (++n === 8) {
        clearInterval(timer);
        stream.end();
      }
    }, 150);
    stream.on('close', () => clearInterval(timer));
  });
  const relay = await relayTo(upstream.url, {}, { timeout: { read: 500 } });
  const [never, ticks] = await Promise.all([fetchRaw(`${relay.url}/never`), fetchRaw(`${relay.url}/ticks`)]);
  assert.is(never.status, 504);
  assert.is(ticks.status, 200);
  assert.is(ticks.text, '0.1.2.3.4.5.6.7.');
  assert.is(upstream.sessions.length, 1);
});

test('an upstream that closes idle sessions: the next request opens a new one and succeeds', async () => {
  const upstream = await h2Upstream((stream, headers) => {
    stream.respond({ ':status': 200 });
    stream.end(String(headers[':path']));
  });
  upstream.server.setTimeout(300, () => {});
  upstream.server.on('timeout', () => {});
  for (const s of upstream.sessions) s.setTimeout(300, () => s.close());
  upstream.server.on('session', (s) => s.setTimeout(300, () => s.close()));
  const relay = await relayTo(upstream.url);
  const answers: string[] = [];
  for (let i = 0; i < 4; i++) {
    const answer = await fetchRaw(`${relay.url}/i${i}`);
    answers.push(`${answer.status} ${answer.text}`);
    await delay(500);
  }
  assert.equal(answers, ['200 /i0', '200 /i1', '200 /i2', '200 /i3']);
  assert.ok(upstream.sessions.length >= 2, `sessions: ${upstream.sessions.length}`);
});

test('one client not reading a large response does not stall another stream on the same upstream session', async () => {
  const big = Buffer.alloc(8 * 1024 * 1024, 'b');
  const upstream = await h2Upstream((stream) => {
    stream.respond({ ':status': 200, 'content-length': String(big.length) });
    stream.end(big);
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, transport: http2Transport(), timeout: { read: 10_000 } });
  const session = await h2Front(relay);
  const stalled = session.request({ ':method': 'GET', ':path': '/stalled' });
  stalled.on('error', () => {});
  stalled.pause();
  stalled.end();
  await new Promise((resolve) => stalled.once('response', resolve));
  const other = http2.connect(`http://127.0.0.1:${session.socket.remotePort}`);
  other.on('error', () => {});
  closers.push(() => other.destroy());
  const started = Date.now();
  const reader = other.request({ ':method': 'GET', ':path': '/reader' });
  reader.end();
  let got = 0;
  reader.on('data', (c: Buffer) => (got += c.length));
  await new Promise<void>((resolve) => {
    reader.on('close', () => resolve());
    setTimeout(resolve, 8000);
  });
  assert.is(got, big.length, `read ${got} bytes in ${Date.now() - started} ms`);
  assert.is(upstream.sessions.length, 1);
  stalled.close(constants.NGHTTP2_CANCEL);
});

test('response trailers from an h2 upstream reach an HTTP/2 client', async () => {
  const upstream = await h2Upstream((stream) => {
    stream.respond({ ':status': 200 }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc', 'grpc-status': '0' }));
    stream.end('body');
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, transport: http2Transport() });
  const session = await h2Front(relay);
  const stream = session.request({ ':method': 'GET', ':path': '/t' });
  stream.end();
  const answer = await collect(stream);
  assert.is(answer.body, 'body');
  assert.is(answer.trailers['x-checksum'], 'abc');
  assert.is(answer.trailers['grpc-status'], '0');
});

test('an upstream that answers 413 before reading an upload (http2Transport): the HTTP/2 client stream closes, nothing stays in flight', async () => {
  const upstream = await h2Upstream((stream) => {
    stream.respond({ ':status': 413 });
    stream.end('too big');
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, transport: http2Transport(), timeout: { read: 3000, write: 3000 } });
  const session = await h2Front(relay);
  const stream = session.request({ ':method': 'POST', ':path': '/upload' });
  const answerP = collect(stream, 6000);
  const upload = writeChunks(stream, { chunk: Buffer.alloc(64 * 1024, 'u'), count: 64 });
  const answer = await answerP;
  assert.is(answer.status, 413);
  assert.is(answer.body, 'too big');
  assert.ok(stream.closed, `the client stream closed (sent ${upload.written} chunks)`);
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000), `relay.inFlight stayed ${relay.inFlight}`);
});

test('the upstream session dies mid-body, HTTP/1.1 client: the chunked body is cut without its last chunk, never a clean shorter end', async () => {
  const upstream = await h2Upstream((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.write('partial');
    setTimeout(() => upstream.sockets[0]!.destroy(), 100);
  });
  const relay = await relayTo(upstream.url);
  const outcome = await new Promise<string>((resolve) => {
    const req = http.get(`${relay.url}/dies`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(`complete: ${body}`));
      res.on('aborted', () => resolve(`aborted: ${body}`));
      res.on('error', () => resolve(`error: ${body}`));
    });
    req.on('error', () => resolve('request error'));
  });
  assert.ok(!outcome.startsWith('complete'), outcome);
});

test('GOAWAY whose last-stream-id is below a POST in flight: answered promptly (resent or a 502), never hung', async () => {
  const upstream = await h2Upstream((stream, headers) => {
    if (headers[':path'] === '/post' && stream.id! > 1) {
      // node:http2 turns a last-stream-id of 0 into the last one it received: name the one before.
      stream.session!.goaway(constants.NGHTTP2_NO_ERROR, stream.id! - 2);
      return;
    }
    stream.respond({ ':status': 200 });
    stream.end(String(headers[':path']));
  });
  const relay = await relayTo(upstream.url, {}, { timeout: { read: 20_000 } });
  assert.is((await fetchRaw(`${relay.url}/warm`)).status, 200);
  const started = Date.now();
  const answer = await fetchRaw(`${relay.url}/post`, { method: 'POST', body: 'payload' });
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms (${answer.status})`);
  assert.ok(answer.status === 200 || answer.status === 502, `${answer.status} ${answer.text}`);
});

test('an h2 upstream that stops reading the request body (its flow-control window shut): 504 ERR_WRITE_TIMEOUT, not a client timeout', async () => {
  // The relay's writes wait on the stream: bytes are queued for the upstream, so the silence is its.
  const upstream = await h2Upstream((stream) => stream.pause());
  const logger = memoryLogger();
  const relay = await relayTo(upstream.url, {}, { logger, timeout: { write: 300, read: 5000 } });
  const started = Date.now();
  const status = await new Promise<number>((resolve) => {
    const req = http.request(`${relay.url}/upload`, { method: 'POST', agent: false, headers: { 'content-length': 64 * 1024 * 1024 } });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(-1));
    writeChunks(req, { chunk: Buffer.alloc(1024 * 1024), count: 64 });
  });
  assert.is(status, 504);
  assert.ok(Date.now() - started < 3000, `${Date.now() - started} ms`);
  assert.ok(logger.lines.some((line) => line.fields.code === 'ERR_WRITE_TIMEOUT'), 'logged as the upstream write timeout');
});

test('a session closing or destroyed whose close event has not come yet is never handed to a new stream', async () => {
  const upstream = await h2Upstream((stream, headers) => {
    stream.respond({ ':status': 200 });
    if (headers[':path'] === '/slow') setTimeout(() => stream.end(), 300);
    else stream.end();
  });
  const config = { target: resolveTarget(upstream.url, undefined), timeouts: { ...defaultTimeouts }, tls: {}, logger: silentLogger };
  const pool = new SessionPool(config, config.target, { maxSessions: 1, maxConcurrentStreams: Infinity, pingInterval: 0, idleTimeout: 0 });
  closers.push(() => pool.close());
  const acquire = () =>
    new Promise<PooledSession>((resolve, reject) =>
      pool.acquire({ onSession: resolve, onQueued: () => {}, onNoSession: reject, onHttp1: () => reject(new Error('http1')) }),
    );
  // A session closing gracefully (close(): no new streams) stays open until its last stream ends.
  const first = await acquire();
  const slow = first.session!.request({ ':path': '/slow' });
  slow.resume();
  slow.on('error', () => {});
  slow.on('close', () => pool.release(first));
  await new Promise((resolve) => slow.once('response', resolve));
  first.session!.close();
  const second = await acquire();
  assert.is.not(second, first, 'a session whose close() was called');
  assert.is(second.session!.closed, false);
  pool.release(second);
  // As on a socket error: node destroys the session now and emits its close a little later.
  second.session!.destroy();
  const third = await acquire();
  assert.is.not(third, second, 'a destroyed session');
  assert.is(third.session!.destroyed, false);
  pool.release(third);
});

test.run();
