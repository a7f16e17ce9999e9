// http2Transport: a stream the upstream never processed (REFUSED_STREAM, or above a GOAWAY's last
// stream id: RFC 9113 §8.7) is sent again on a new stream, its body too once the body had started:
// the chunks sent are kept up to 64 KiB until the response head. Each upstream here refuses on
// purpose, so every test fails the same way on a transport that gives up on a started body.
import http from 'node:http';
import http2, { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { bytePattern, h2Request, listenHttp2, memoryLogger, waitFor } from '@relay/testkit';
import { createRelay, http2Transport, type Http2TransportOptions, type Relay, type RelayOptions } from '../src/index.js';
import { h2FrontSession, relayOverHttp2, type Closers } from './http2-helpers.js';

const test = suite('http2Transport: refused streams with a body');
const closers: Closers = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

interface Upstream {
  url: string;
  streams: number;
  sessions: http2.ServerHttp2Session[];
  /** The whole body each answered stream received. */
  bodies: Buffer[];
}

/**
 * An h2 upstream whose streams `refuse(stream, n)` turns away (n counts streams from 1), each once
 * it saw `after` body bytes of it; the others get their body back as a 200.
 */
async function refusingUpstream(refuse: (stream: ServerHttp2Stream, n: number) => boolean, after = 1): Promise<Upstream> {
  const server = http2.createServer();
  const up: Upstream = { url: '', streams: 0, sessions: [], bodies: [] };
  server.on('session', (s) => up.sessions.push(s));
  server.on('stream', (stream: ServerHttp2Stream, _headers: IncomingHttpHeaders) => {
    const n = ++up.streams;
    stream.on('error', () => {});
    const chunks: Buffer[] = [];
    let seen = 0;
    let refused = false;
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      seen += chunk.length;
      if (!refused && seen >= after && refuse(stream, n)) refused = true;
    });
    stream.on('end', () => {
      if (refused) return;
      const body = Buffer.concat(chunks);
      up.bodies.push(body);
      stream.respond({ ':status': 200 });
      stream.end(`got ${body.length}`);
    });
  });
  const listening = await listenHttp2(server);
  up.url = listening.url;
  closers.push(() => listening.close());
  return up;
}

/** REFUSED_STREAM on the stream. */
function refuseStream(stream: ServerHttp2Stream): boolean {
  stream.close(constants.NGHTTP2_REFUSED_STREAM);
  return true;
}

/**
 * A GOAWAY whose last stream id is the one before this stream (it was not processed), then the
 * connection closed: a server rotating its connections (gRPC's max_connection_age) with a call on
 * its way. Not on a session's first stream: node's `goaway()` reads a last stream id of 0 as "the
 * last one received".
 */
function goAwayBelow(stream: ServerHttp2Stream): boolean {
  if ((stream.id ?? 0) < 3) throw new Error('goAwayBelow needs a stream before this one on its session');
  const session = stream.session!;
  session.goaway(constants.NGHTTP2_NO_ERROR, stream.id! - 2);
  setTimeout(() => session.destroy(), 20);
  return true;
}

/** A GET first, so that the session the relay keeps has served a stream (the POST is its second). */
async function warmUp(url: string): Promise<void> {
  await new Promise<void>((resolve, reject) => http.get(`${url}/warm`, (res) => res.resume().on('end', resolve)).on('error', reject));
}

function makeRelay(url: string, transport: Http2TransportOptions = {}, options: Partial<RelayOptions> = {}): Relay {
  return createRelay({ targetBaseUrl: url, transport: http2Transport(transport), ...options });
}

/** A POST over HTTP/1.1 whose body goes in `parts`, each sent once `before(i)` says so. */
function post(url: string, parts: Buffer[], before: (index: number) => Promise<unknown> = async () => {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/submit`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    void (async () => {
      for (const [index, part] of parts.entries()) {
        await before(index);
        req.write(part);
      }
      req.end();
    })();
  });
}

test('REFUSED_STREAM on a POST with a small body (h2 client → h2 upstream): the request is sent again, or the client stream is refused too so the client can retry; never a 502 for a request the upstream never processed', async () => {
  let first = true;
  const bodies: string[] = [];
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('error', () => {});
    if (first) {
      first = false;
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (body += c));
    stream.on('end', () => {
      bodies.push(body);
      stream.respond({ ':status': 200 });
      stream.end(`got ${body}`);
    });
  });
  const listening = await listenHttp2(server);
  closers.push(() => listening.close());
  const session = await h2FrontSession(closers, makeRelay(listening.url));
  const outcome = await new Promise<{ status: number; body: string; rstCode?: number }>((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': '/submit', 'content-type': 'text/plain' });
    let status = 0;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: string) => (body += c));
    stream.on('error', () => {});
    stream.on('close', () => resolve({ status, body, rstCode: stream.rstCode }));
    stream.end('hello');
  });
  const resent = outcome.status === 200 && outcome.body === 'got hello';
  const refused = outcome.status === 0 && outcome.rstCode === constants.NGHTTP2_REFUSED_STREAM;
  assert.ok(resent || refused, `status ${outcome.status} body ${JSON.stringify(outcome.body)} rst ${outcome.rstCode}`);
  if (resent) assert.equal(bodies, ['hello']);
});

test('a GOAWAY below the stream after its body started, then the connection closed: the POST goes again on a new session with its whole body, once', async () => {
  const up = await refusingUpstream((stream, n) => n === 2 && goAwayBelow(stream));
  const relay = await relayOverHttp2(closers, up.url);
  await warmUp(relay.url);
  const body = bytePattern(3000);
  const answer = await post(relay.url, [body]);
  assert.equal(answer, { status: 200, body: 'got 3000' });
  assert.is(up.bodies.length, 2, 'the GET and one POST answered');
  assert.ok(up.bodies[1]!.equals(body), 'the resent body is the whole body, byte for byte');
  assert.is(up.sessions.length, 2, 'the resend went on a new session');
});

test('refused while the client is still uploading: the new stream gets the bytes sent so far, then the rest as it comes', async () => {
  const up = await refusingUpstream((stream, n) => n === 1 && refuseStream(stream));
  const relay = await relayOverHttp2(closers, up.url);
  const parts = [Buffer.from('first part, '), Buffer.from('second part, '), Buffer.from('last part')];
  // The second part leaves the client only once the upstream refused the first stream mid-body.
  const answer = await post(relay.url, parts, (index) => (index === 1 ? waitFor(() => up.streams === 2, 3000) : Promise.resolve()));
  assert.is(answer.status, 200, answer.body);
  assert.equal(up.bodies.map(String), ['first part, second part, last part']);
});

test('a GOAWAY from an h2 client’s upstream mid-body: the h2 client’s POST is answered 200, the body whole', async () => {
  const up = await refusingUpstream((stream, n) => n === 2 && goAwayBelow(stream));
  const relay = makeRelay(up.url);
  const session = await h2FrontSession(closers, relay);
  const warm = await h2Request(session, { ':path': '/warm' });
  assert.is(warm.headers[':status'], 200);
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/submit' });
    let status = 0;
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: string) => (text += c));
    stream.on('end', () => resolve({ status, body: text }));
    stream.on('error', reject);
    stream.write('abc');
    void waitFor(() => up.streams === 3, 3000).then(() => stream.end('def'));
  });
  assert.equal(answer, { status: 200, body: 'got 6' });
  assert.equal(up.bodies.map(String), ['', 'abcdef']);
  assert.is(up.sessions.length, 2);
});

test('refused on two sessions in a row: the third stream gets the body (two resends at most)', async () => {
  const up = await refusingUpstream((stream, n) => n <= 2 && (n === 1 ? refuseStream(stream) : goAwayBelow(stream)));
  const relay = await relayOverHttp2(closers, up.url);
  const answer = await post(relay.url, [Buffer.from('payload')]);
  assert.equal(answer, { status: 200, body: 'got 7' });
  assert.equal(up.bodies.map(String), ['payload']);
  assert.is(up.streams, 3);
});

test('a body that outgrew the 64 KiB kept for a resend: a refusal after that is a 502 ERR_UPSTREAM_RESET, and nothing is sent again', async () => {
  const up = await refusingUpstream((stream, n) => n === 1 && refuseStream(stream), 100 * 1024);
  const logger = memoryLogger();
  const relay = await relayOverHttp2(closers, up.url, {}, { logger });
  const answer = await post(relay.url, [bytePattern(80 * 1024), bytePattern(80 * 1024)]);
  assert.is(answer.status, 502, answer.body);
  assert.match(answer.body, /ERR_UPSTREAM_RESET/);
  assert.is(up.streams, 1, 'no partial body was sent on a second stream');
});

test.run();
