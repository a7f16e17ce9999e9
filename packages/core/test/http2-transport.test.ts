// http2Transport against real node:http2 upstreams (h2c and TLS with a self-signed certificate):
// one session for many requests, maxConcurrentStreams and the pool timeout, GOAWAY mid-traffic,
// ALPN fallback to HTTP/1.1 or refusal, client aborts as RST_STREAM CANCEL, headers on the wire.
import { constants, createSecureServer, createServer as createH2Server, type Http2Server, type Http2Session, type Http2SecureServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer, type Server } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, memoryLogger, tlsFixture, waitFor } from '@relay/testkit';
import { http2Transport, type Http2TransportOptions, type RelayOptions, type Stage } from '../src/index.js';
import { relayOverHttp2, type Closers } from './http2-helpers.js';

const test = suite('http2Transport');

type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

interface H2Upstream {
  url: string;
  sessions: Http2Session[];
  close(): Promise<void>;
}

const closers: Closers = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

/** An h2c (or, with `secure`, TLS) upstream on 127.0.0.1 answering with the stream API. */
async function h2Upstream(handler: StreamHandler, options: { settings?: { maxConcurrentStreams?: number }; secure?: boolean } = {}): Promise<H2Upstream> {
  const sessions: Http2Session[] = [];
  const server: Http2Server | Http2SecureServer = options.secure
    ? createSecureServer({ ...tlsFixture, settings: options.settings })
    : createH2Server({ settings: options.settings });
  server.on('session', (session: Http2Session) => sessions.push(session));
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    // Streams the client refuses or resets fail on the server side too: expected here.
    stream.on('error', () => {});
    handler(stream, headers);
  });
  const url = (await listen(server)).replace('http:', options.secure ? 'https:' : 'http:');
  const upstream = {
    url,
    sessions,
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

function answer(text: string): StreamHandler {
  return (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(text);
  };
}

test('one session carries every request: 30 requests, 10 at a time, open one upstream session', async () => {
  const upstream = await h2Upstream((stream, headers) => setTimeout(() => answer(String(headers[':path']))(stream, headers), 20));
  const relay = await relayTo(upstream.url);
  for (let round = 0; round < 3; round++) {
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => fetchRaw(`${relay.url}/r${round}-${i}`)));
    responses.forEach((response, i) => assert.is(response.text, `/r${round}-${i}`));
  }
  assert.is(upstream.sessions.length, 1);
});

test('maxConcurrentStreams from the upstream SETTINGS: excess requests queue, never more streams at once than allowed', async () => {
  let open = 0;
  let most = 0;
  const upstream = await h2Upstream(
    (stream) => {
      most = Math.max(most, ++open);
      setTimeout(() => {
        open--;
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }, 100);
    },
    { settings: { maxConcurrentStreams: 2 } },
  );
  const relay = await relayTo(upstream.url, {}, { timeout: { pool: 10_000 } });
  const responses = await Promise.all(Array.from({ length: 8 }, () => fetchRaw(`${relay.url}/q`)));
  assert.equal(responses.map((r) => r.status), Array(8).fill(200));
  assert.is(most, 2, `the upstream saw ${most} streams at once`);
  assert.is(upstream.sessions.length, 1, 'the queue waits for the one session (maxSessions 1)');
});

test('a request that waits longer than timeout.pool for a stream is a 504 ERR_POOL_TIMEOUT that never reaches the upstream', async () => {
  const paths: string[] = [];
  const upstream = await h2Upstream(
    (stream, headers) => {
      paths.push(String(headers[':path']));
      setTimeout(() => answer('held')(stream, headers), 1500);
    },
    { settings: { maxConcurrentStreams: 1 } },
  );
  const relay = await relayTo(upstream.url, {}, { timeout: { pool: 200 } });
  const holding = fetchRaw(`${relay.url}/hold`);
  assert.ok(await waitFor(() => paths.length === 1));
  const waited = await fetchRaw(`${relay.url}/waits`);
  assert.is(waited.status, 504);
  assert.ok(waited.text.includes('ERR_POOL_TIMEOUT'), waited.text);
  assert.is((await holding).text, 'held');
  assert.equal(paths, ['/hold']);
});

test('maxSessions: a second session opens when the first is full', async () => {
  const upstream = await h2Upstream((stream, headers) => setTimeout(() => answer('ok')(stream, headers), 200), { settings: { maxConcurrentStreams: 2 } });
  const relay = await relayTo(upstream.url, { maxSessions: 2 });
  const responses = await Promise.all(Array.from({ length: 4 }, () => fetchRaw(`${relay.url}/s`)));
  assert.equal(responses.map((r) => r.text), ['ok', 'ok', 'ok', 'ok']);
  assert.is(upstream.sessions.length, 2);
});

test('GOAWAY mid-traffic: streams the upstream did not process are sent again on a new session, no request fails', async () => {
  // The first session holds its first 20 streams, then says GOAWAY with the 10th as the last one
  // it processes: streams 11 to 20 are in flight and unprocessed. Later sessions answer at once.
  const held: Array<{ stream: ServerHttp2Stream; path: string }> = [];
  let streams = 0;
  const upstream = await h2Upstream((stream, headers) => {
    streams++;
    const path = String(headers[':path']);
    if (stream.session !== upstream.sessions[0]) {
      answer(path)(stream, headers);
      return;
    }
    held.push({ stream, path });
    if (held.length < 20) return;
    const last = held[9]!.stream.id!;
    stream.session!.goaway(constants.NGHTTP2_NO_ERROR, last);
    for (const { stream: one, path: onePath } of held) if (one.id! <= last) answer(onePath)(one, {});
    setTimeout(() => stream.session?.close(), 200);
  });
  const relay = await relayTo(upstream.url);
  const responses = await Promise.all(
    Array.from({ length: 40 }, (_, i) => fetchRaw(`${relay.url}/g${i}`, i % 2 === 0 ? {} : { method: 'PUT', headers: { 'content-length': '0' } })),
  );
  const failed = responses.filter((r, i) => r.status !== 200 || r.text !== `/g${i}`);
  assert.is(failed.length, 0, `failed: ${failed.map((r) => `${r.status} ${r.text}`).join('; ')}`);
  assert.ok(upstream.sessions.length >= 2, `sessions: ${upstream.sessions.length}`);
  assert.ok(streams >= 50, `the 10 unprocessed streams were sent again (${streams} streams for 40 requests)`);
});

test('REFUSED_STREAM: a request the upstream refused before processing is sent again', async () => {
  let first = true;
  const upstream = await h2Upstream((stream, headers) => {
    if (first) {
      first = false;
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    answer(String(headers[':path']))(stream, headers);
  });
  const relay = await relayTo(upstream.url);
  const response = await fetchRaw(`${relay.url}/again`);
  assert.is(response.text, '/again');
});

test('a stream reset by the upstream with another code is a 502 ERR_UPSTREAM_RESET and is not resent', async () => {
  let streams = 0;
  const upstream = await h2Upstream((stream) => {
    streams++;
    stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  });
  const relay = await relayTo(upstream.url);
  const response = await fetchRaw(`${relay.url}/x`);
  assert.is(response.status, 502);
  assert.ok(response.text.includes('ERR_UPSTREAM_RESET'), response.text);
  assert.is(streams, 1);
});

test('https upstream with ALPN h2: the relay speaks HTTP/2 over TLS with tls.ca', async () => {
  const upstream = await h2Upstream((stream, headers) => answer(`h2 ${headers[':scheme']}`)(stream, headers), { secure: true });
  const relay = await relayTo(upstream.url, {}, { tls: { ca: tlsFixture.cert } });
  assert.is((await fetchRaw(`${relay.url}/x`)).text, 'h2 https');
  const untrusted = await relayTo(upstream.url);
  const refused = await fetchRaw(`${untrusted.url}/x`);
  assert.is(refused.status, 502);
  assert.ok(refused.text.includes('ERR_UPSTREAM_TLS'), refused.text);
});

async function http1OnlyHttps(): Promise<string> {
  const server = createHttpsServer(tlsFixture, (req, res) => res.end(`HTTP/${req.httpVersion}`));
  const url = (await listen(server)).replace('http:', 'https:');
  closers.push(() => close(server as unknown as Server));
  return url;
}

test('an https upstream that does not offer h2: requests go over HTTP/1.1 (fallback: http1, the default)', async () => {
  const url = await http1OnlyHttps();
  const relay = await relayTo(url, {}, { tls: { ca: tlsFixture.cert } });
  assert.is((await fetchRaw(`${relay.url}/a`)).text, 'HTTP/1.1');
  assert.is((await fetchRaw(`${relay.url}/b`)).text, 'HTTP/1.1');
});

test("fallback: 'refuse': an https upstream without h2 is a 502 ERR_UPSTREAM_PROTOCOL", async () => {
  const url = await http1OnlyHttps();
  const relay = await relayTo(url, { fallback: 'refuse' }, { tls: { ca: tlsFixture.cert } });
  const response = await fetchRaw(`${relay.url}/a`);
  assert.is(response.status, 502);
  assert.ok(response.text.includes('ERR_UPSTREAM_PROTOCOL'), response.text);
});

test('an h2c target that answers in HTTP/1.1 is a 502 ERR_UPSTREAM_PROTOCOL', async () => {
  const server = createHttpServer((_req, res) => res.end('http/1.1'));
  const url = await listen(server);
  closers.push(() => close(server));
  const relay = await relayTo(url);
  const response = await fetchRaw(`${relay.url}/a`);
  assert.is(response.status, 502);
  assert.ok(response.text.includes('ERR_UPSTREAM_PROTOCOL'), response.text);
  assert.not.match(response.text, /127\.0\.0\.1/);
});

test('a client that goes away resets the upstream stream with RST_STREAM CANCEL', async () => {
  let upstreamStream: ServerHttp2Stream | null = null;
  const upstream = await h2Upstream((stream) => {
    upstreamStream = stream;
    stream.respond({ ':status': 200 });
    stream.write('first');
  });
  const relay = await relayTo(upstream.url);
  const { request } = await import('node:http');
  const client = request(`${relay.url}/stream`, { agent: false });
  client.on('error', () => {});
  client.end();
  const res = await new Promise<import('node:http').IncomingMessage>((resolve) => client.once('response', resolve));
  await new Promise((resolve) => res.once('data', resolve));
  client.destroy();
  assert.ok(await waitFor(() => upstreamStream?.closed === true, 3000), 'the upstream stream closed');
  assert.is(upstreamStream!.rstCode, constants.NGHTTP2_CANCEL);
  assert.ok(await waitFor(() => relay.relay.inFlight === 0));
  assert.is(upstream.sessions.length, 1);
  assert.not.ok(upstream.sessions[0]!.destroyed, 'the session stays open for other requests');
});

test('headers: connection-specific ones never go out, te only as trailers, Host as :authority; no pseudo-header comes back', async () => {
  let seen: IncomingHttpHeaders = {};
  const upstream = await h2Upstream((stream, headers) => {
    seen = headers;
    stream.respond({ ':status': 201, 'x-up': 'yes' });
    stream.end();
  });
  const sneaky: Stage = {
    name: 'sneaky',
    wrap: (next) =>
      function sneakyStage(request) {
        request.headers.connection = 'close';
        request.headers['keep-alive'] = 'timeout=5';
        request.headers['transfer-encoding'] = 'chunked';
        request.headers.upgrade = 'h2c';
        request.headers['proxy-connection'] = 'keep-alive';
        request.headers.te = 'trailers, deflate';
        return next(request);
      },
  };
  const relay = await relayTo(upstream.url, {}, { stages: [sneaky] });
  const response = await fetchRaw(`${relay.url}/h?q=1`);
  assert.is(response.status, 201);
  assert.is(response.headers['x-up'], 'yes');
  assert.not.ok(Object.keys(response.headers).some((name) => name.startsWith(':')));
  for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'host']) assert.is(seen[name], undefined, name);
  assert.is(seen.te, 'trailers');
  assert.is(seen[':authority'], new URL(upstream.url).host);
  assert.is(seen[':path'], '/h?q=1');
  assert.is(seen[':method'], 'GET');
});

test('PING keep-alive: an idle session is pinged every pingInterval', async () => {
  const upstream = await h2Upstream(answer('ok'));
  const relay = await relayTo(upstream.url, { pingInterval: 50 });
  await fetchRaw(`${relay.url}/p`);
  let pings = 0;
  upstream.sessions[0]!.on('ping', () => pings++);
  assert.ok(await waitFor(() => pings >= 3, 3000), `pings: ${pings}`);
});

test('shutdown closes the session; the relay logs nothing at error', async () => {
  const logger = memoryLogger();
  const upstream = await h2Upstream(answer('ok'));
  const relay = await relayTo(upstream.url, {}, { logger });
  await fetchRaw(`${relay.url}/p`);
  await relay.relay.shutdown();
  assert.ok(await waitFor(() => upstream.sessions[0]!.destroyed || upstream.sessions[0]!.closed), 'the upstream session closed');
  assert.equal(logger.lines.filter((line) => line.level === 'error'), []);
});

test('options are checked: unknown keys name the nearest one, bad values their option', () => {
  assert.throws(() => http2Transport({ maxSession: 2 } as Http2TransportOptions), /unknown option "maxSession" \(did you mean "maxSessions"\?/);
  assert.throws(() => http2Transport({ fallback: 'h1' as 'http1' }), /fallback/);
  assert.throws(() => http2Transport({ maxSessions: 0 }), /maxSessions/);
  assert.throws(() => http2Transport({ maxConcurrentStreams: 0 }), /maxConcurrentStreams/);
  assert.throws(() => http2Transport({ pingInterval: -1 }), /pingInterval/);
});

test.run();
