// the HTTP/2 front (http2.createServer(relay.handle)) as an operator runs it.
import http2, { constants } from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, listenHttp2, startUpstream, waitFor, writeChunks } from '@relay/testkit';
import { createRelay, type Relay, type RelayOptions } from '../src/index.js';
import { h2FrontSession } from './http2-helpers.js';

const test = suite('HTTP/2 front edges');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

async function h2Front(options: RelayOptions): Promise<{ relay: Relay; session: http2.ClientHttp2Session }> {
  const relay = createRelay(options);
  return { relay, session: await h2FrontSession(closers, relay) };
}

interface Answer {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  rstCode: number | undefined;
  ended: boolean;
}

function collect(stream: http2.ClientHttp2Stream, limitMs = 5000): Promise<Answer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    let ended = false;
    const timer = setTimeout(() => finish(), limitMs);
    const finish = () => {
      clearTimeout(timer);
      resolve({ status: headers[':status'] as number | undefined, headers, body: Buffer.concat(chunks), rstCode: stream.rstCode, ended });
    };
    stream.on('response', (h) => (headers = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => (ended = true));
    stream.on('error', () => {});
    stream.on('close', finish);
  });
}

test(':authority and a different Host: the target URI comes from :authority (RFC 9113 §8.3.1), never from Host', async () => {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const { session } = await h2Front({ targetBaseUrl: upstream.url, preserveHost: true });
  const stream = session.request({ ':method': 'GET', ':path': '/who', ':authority': 'good.example', host: 'evil.example' });
  stream.end();
  const answer = await collect(stream);
  // Either refused as malformed (400) or routed by :authority; never by Host.
  if (answer.status === 400) {
    assert.is(upstream.requests.length, 0);
    return;
  }
  assert.is(answer.status, 200);
  const seen = upstream.requests[0]!;
  assert.is(seen.headers.host, 'good.example', `upstream Host: ${seen.headers.host}`);
  assert.is(seen.headers['x-forwarded-host'], 'good.example', `X-Forwarded-Host: ${seen.headers['x-forwarded-host']}`);
});

test('a 205 whose upstream sent Content-Length and content, and a 304 with Content-Length: valid HTTP/2 answers, never a PROTOCOL_ERROR reset', async () => {
  // node:http2 ends a 205 (and a 304) with its HEADERS frame: a non-zero length on the 205 would
  // leave the client short of bytes. A 304's length states the representation's and may stay.
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/reset') res.writeHead(205, { 'content-length': '5' }).end('hello');
    else res.writeHead(304, { 'content-length': '5', etag: '"v1"' }).end();
  });
  closers.push(() => upstream.close());
  const { session } = await h2Front({ targetBaseUrl: upstream.url });
  const reset = session.request({ ':method': 'POST', ':path': '/reset' });
  reset.end('form');
  const resetAnswer = await collect(reset);
  assert.is(resetAnswer.status, 205);
  assert.is(resetAnswer.rstCode, constants.NGHTTP2_NO_ERROR);
  assert.is(resetAnswer.body.length, 0);
  const notModified = session.request({ ':method': 'GET', ':path': '/cached', 'if-none-match': '"v1"' });
  notModified.end();
  const notModifiedAnswer = await collect(notModified);
  assert.is(notModifiedAnswer.status, 304);
  assert.is(notModifiedAnswer.rstCode, constants.NGHTTP2_NO_ERROR);
  assert.is(notModifiedAnswer.headers['content-length'], '5');
});

test('CONNECT over HTTP/2 is not forwarded upstream as an ordinary request', async () => {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const { session } = await h2Front({ targetBaseUrl: upstream.url });
  const stream = session.request({ ':method': 'CONNECT', ':authority': 'internal-db:5432' }, { endStream: false });
  const answer = await collect(stream, 3000);
  stream.close();
  assert.equal(upstream.requests.map((r) => `${r.method} ${r.url}`), [], `the upstream got: ${upstream.requests.map((r) => `${r.method} ${r.url}`)}`);
  assert.ok(answer.status === undefined || answer.status >= 400, `status ${answer.status}`);
});

test('an upstream that answers 413 before reading a large HTTP/2 upload: the client gets the 413, its stream closes, nothing stays in flight', async () => {
  const upstream = await startUpstream(
    (req, res) => {
      res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
      res.end('too big');
      req.socket.destroySoon?.();
    },
    { streaming: true },
  );
  closers.push(() => upstream.close());
  const { relay, session } = await h2Front({ targetBaseUrl: upstream.url, timeout: { read: 3000, write: 3000 } });
  const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' });
  const answerP = collect(stream, 8000);
  // 4 MiB, written as fast as flow control lets it; never ended unless everything is taken.
  writeChunks(stream, { chunk: Buffer.alloc(64 * 1024, 'u'), count: 64 });
  const answer = await answerP;
  assert.is(answer.status, 413, `status ${answer.status}, rst ${answer.rstCode}, ended ${answer.ended}`);
  assert.is(answer.body.toString(), 'too big');
  assert.ok(stream.closed, 'the client stream closed');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000), `relay.inFlight stayed ${relay.inFlight}`);
});

test('a client that resets its stream mid-upload (RST_STREAM, no END_STREAM): the upstream sees the upload cut, never a whole shorter body', async () => {
  // RFC 9113 §8.1: a request is complete only with END_STREAM. node's compatibility request ends
  // its body after a reset as if it were whole, so a relay piping it on would hand the upstream a
  // truncated upload (a cut JSON document, a short file) that looks complete.
  const seen: string[] = [];
  const upstream = await startUpstream(
    (req, res) => {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => {
        seen.push(`complete ${bytes}`);
        res.end('ok');
      });
      req.on('aborted', () => seen.push(`cut ${bytes}`));
      req.on('error', () => {});
    },
    { streaming: true },
  );
  closers.push(() => upstream.close());
  const { relay, session } = await h2Front({ targetBaseUrl: upstream.url });
  const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' });
  stream.on('error', () => {});
  stream.write(Buffer.alloc(1000, 'u'));
  assert.ok(await waitFor(() => upstream.requests.length === 1, 3000), 'the upload reached the upstream');
  await delay(50);
  // destroy() sends RST_STREAM(CANCEL) without END_STREAM (close() would end the stream first).
  stream.destroy();
  assert.ok(await waitFor(() => seen.length === 1, 3000), 'the upstream saw neither an end nor a cut');
  assert.equal(seen, ['cut 1000']);
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000), `relay.inFlight stayed ${relay.inFlight}`);
});

test("Set-Cookie over HTTP/2: the app's cookie set before relay.handle goes beside the upstream's", async () => {
  const upstream = await startUpstream((_req, res) => {
    res.setHeader('set-cookie', ['up=1', 'theme=dark']);
    res.end('ok');
  });
  closers.push(() => upstream.close());
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const front = await listenHttp2(
    http2.createServer((req, res) => {
      res.setHeader('set-cookie', 'sid=s1');
      relay.handle(req, res);
    }),
  );
  const session = http2.connect(front.url);
  session.on('error', () => {});
  closers.push(async () => {
    session.destroy();
    await front.close();
    await relay.shutdown({ timeout: 500 });
  });
  const answer = await collect(session.request({ ':path': '/x' }));
  assert.is(answer.status, 200);
  assert.equal(answer.headers['set-cookie'], ['sid=s1', 'up=1', 'theme=dark']);
});

test('a refused request (400 bad path) with a large upload still being sent: 400 arrives and the stream closes', async () => {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const { relay, session } = await h2Front({ targetBaseUrl: upstream.url });
  const stream = session.request({ ':method': 'POST', ':path': '/a/..%2f..%2fadmin' });
  const answerP = collect(stream, 5000);
  writeChunks(stream, { chunk: Buffer.alloc(64 * 1024, 'u'), count: 32 });
  const answer = await answerP;
  assert.is(answer.status, 400);
  assert.ok(stream.closed, `the client stream closed (rst ${answer.rstCode})`);
  assert.is(relay.inFlight, 0);
});

test('a client that does not read a 64 MiB response: the relay stops reading the upstream (bounded buffering)', async () => {
  let written = 0;
  const total = 64 * 1024 * 1024;
  const upstream = await startUpstream(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      const chunk = Buffer.alloc(64 * 1024, 'd');
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    },
    { streaming: true },
  );
  closers.push(() => upstream.close());
  const { session } = await h2Front({ targetBaseUrl: upstream.url, timeout: { read: 10_000 } });
  const stream = session.request({ ':method': 'GET', ':path': '/big' });
  stream.on('error', () => {});
  stream.pause();
  stream.end();
  await new Promise((resolve) => stream.once('response', resolve));
  await delay(1500);
  const first = written;
  await delay(1000);
  assert.ok(written < 16 * 1024 * 1024, `the upstream wrote ${written} bytes to a client that reads nothing`);
  assert.is(written, first, 'and nothing more after the windows filled');
  stream.close(constants.NGHTTP2_CANCEL);
});

test('a client GOAWAY (graceful close) mid-stream: the stream in flight still gets its whole answer', async () => {
  const upstream = await startUpstream((_req, res) => setTimeout(() => res.end('late but whole'), 300));
  closers.push(() => upstream.close());
  const { session } = await h2Front({ targetBaseUrl: upstream.url });
  const stream = session.request({ ':method': 'GET', ':path': '/slow' });
  stream.end();
  const answerP = collect(stream);
  await waitFor(() => upstream.requests.length === 1, 2000);
  session.close();
  const answer = await answerP;
  assert.is(answer.status, 200);
  assert.is(answer.body.toString(), 'late but whole');
});

test('many streams on one connection, one upstream request slow: the others are not held behind it', async () => {
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow'), 2000);
    else res.end(req.url);
  });
  closers.push(() => upstream.close());
  const { session } = await h2Front({ targetBaseUrl: upstream.url });
  const slow = session.request({ ':method': 'GET', ':path': '/slow' });
  slow.end();
  const slowP = collect(slow);
  await waitFor(() => upstream.requests.length === 1, 2000);
  const started = Date.now();
  const fast = await Promise.all(
    Array.from({ length: 50 }, (_, i) => {
      const s = session.request({ ':method': 'GET', ':path': `/f${i}` });
      s.end();
      return collect(s);
    }),
  );
  assert.ok(Date.now() - started < 1500, `50 fast streams took ${Date.now() - started} ms`);
  assert.equal(fast.map((a) => a.body.toString()), Array.from({ length: 50 }, (_, i) => `/f${i}`));
  assert.is((await slowP).body.toString(), 'slow');
});

test('relay.shutdown() with HTTP/2 streams open: it resolves by its timeout, a waiting stream gets 503, a streaming one is reset', async () => {
  const upstream = await startUpstream(
    (req, res) => {
      if (req.url === '/streaming') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('start');
      }
      // neither ever ends
    },
    { streaming: true },
  );
  closers.push(() => upstream.close());
  const { relay, session } = await h2Front({ targetBaseUrl: upstream.url, timeout: { read: 30_000 } });
  const waiting = session.request({ ':method': 'GET', ':path': '/waiting' });
  waiting.end();
  const waitingP = collect(waiting);
  const streaming = session.request({ ':method': 'GET', ':path': '/streaming' });
  streaming.end();
  const streamingP = collect(streaming);
  await waitFor(() => upstream.requests.length === 2, 2000);
  await delay(100);
  const started = Date.now();
  await relay.shutdown({ timeout: 300 });
  assert.ok(Date.now() - started < 2500, `shutdown took ${Date.now() - started} ms`);
  const [w, s] = await Promise.all([waitingP, streamingP]);
  assert.is(w.status, 503, `waiting: ${w.status}`);
  assert.is(s.status, 200);
  assert.is(s.ended, false, 'the cut stream never looks complete');
  assert.is(s.rstCode, constants.NGHTTP2_INTERNAL_ERROR);
  assert.is(relay.inFlight, 0);
});

test('relay.shutdown() while an HTTP/2 stream is in flight: the client session gets a GOAWAY (as HTTP/1.1 gets Connection: close), the stream finishes', async () => {
  const upstream = await startUpstream((_req, res) => setTimeout(() => res.end('drained'), 400));
  closers.push(() => upstream.close());
  const { relay, session } = await h2Front({ targetBaseUrl: upstream.url });
  let goaway = false;
  session.on('goaway', () => (goaway = true));
  const stream = session.request({ ':method': 'GET', ':path': '/draining' });
  stream.end();
  const answerP = collect(stream);
  await waitFor(() => upstream.requests.length === 1, 2000);
  const down = relay.shutdown({ timeout: 5000 });
  const answer = await answerP;
  await down;
  assert.is(answer.status, 200);
  assert.is(answer.body.toString(), 'drained');
  // The same drain over HTTP/1.1 answers with Connection: close (http-exchange.ts writeHead).
  assert.ok(await waitFor(() => goaway, 1000), 'no GOAWAY: the client keeps its session to a relay that is shut down');
});

test.run();
