// The undici transport beyond the conformance suite: its options, trailers, 103 Early Hints,
// `Expect: 100-continue` and request trailers (which undici cannot send).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { undiciTransport } from '@relay/core/undici';
import { createRelay } from '../src/index.js';

function message(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  return 'no error';
}

test('options: a misspelled key names the nearest valid one; what undici cannot do is refused; bad limits are RangeErrors', () => {
  assert.match(message(() => undiciTransport({ maxSocket: 8 } as never)), /^undiciTransport: unknown option "maxSocket" \(did you mean "maxSockets"\?/);
  assert.match(message(() => undiciTransport({ minUploadRate: 500 } as never)), /unknown option "minUploadRate"/);
  assert.match(message(() => undiciTransport({ proxy: 'http://proxy:3128' } as never)), /unknown option "proxy"/);
  assert.throws(() => undiciTransport({ maxSockets: 0 }), RangeError);
  assert.throws(() => undiciTransport({ pipelining: 1.5 }), RangeError);
  assert.throws(() => undiciTransport({ idleTimeout: -1 }), /idleTimeout/);
  assert.throws(() => undiciTransport(null as never), /options object/);
  undiciTransport({ maxSockets: 8, idleTimeout: 0, pipelining: 2, slowClientTimeout: 5_000, eventStreams: ['text/event-stream'] });
});

test('response trailers reach an HTTP/1.1 client that sent TE: trailers', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
    res.write('part one, ');
    res.addTrailers({ 'x-checksum': 'sha256=abc' });
    res.end('part two');
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: undiciTransport() }));
  const answer = await sendRaw(served.port, 'GET /t HTTP/1.1\r\nHost: gw\r\nTE: trailers\r\nConnection: close\r\n\r\n', 3000);
  assert.match(answer, /\r\ntransfer-encoding: chunked\r\n/i);
  assert.match(answer, /part one, /);
  assert.match(answer, /\r\n0\r\nx-checksum: sha256=abc\r\n\r\n$/i, answer);
  await served.close();
  await upstream.close();
});

test('103 Early Hints from the upstream reach the client before the final answer', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeEarlyHints({ link: '</app.js>; rel=preload; as=script' });
    setTimeout(() => res.end('page'), 50);
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: undiciTransport() }));
  const seen = await new Promise<{ hint: unknown; status: number; body: string }>((resolve, reject) => {
    let hint: unknown;
    const req = http.get({ host: '127.0.0.1', port: served.port, path: '/page', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ hint, status: res.statusCode!, body }));
    });
    req.on('information', (info) => (hint = [info.statusCode, info.headers.link]));
    req.on('error', reject);
  });
  assert.equal(seen, { hint: [103, '</app.js>; rel=preload; as=script'], status: 200, body: 'page' });
  await served.close();
  await upstream.close();
});

test("Expect: 100-continue through checkContinue: the relay answers 100 itself, the upstream gets the body without Expect", async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, transport: undiciTransport() });
  const server = http.createServer(relay.handle);
  server.on('checkContinue', relay.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await relay.startup();
  const port = (server.address() as AddressInfo).port;
  const answer = await new Promise<string>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/up', method: 'POST', headers: { expect: '100-continue', 'content-length': '7' }, agent: false });
    let continued = false;
    req.on('continue', () => {
      continued = true;
      req.end('payload');
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(`${continued ? '100 then ' : ''}${res.statusCode}`));
    });
  });
  assert.is(answer, '100 then 200');
  assert.is(upstream.requests[0]!.body.toString(), 'payload');
  assert.is(upstream.requests[0]!.headers.expect, undefined);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await relay.shutdown();
  await upstream.close();
});

test('a request body with trailer fields reaches the upstream whole; the trailers are dropped (undici sends none)', async () => {
  const seen: Array<{ body: string; te: string | undefined; trailers: Record<string, string | undefined> }> = [];
  // The testkit upstream calls the handler once the whole body (and any trailer section) is read.
  const upstream = await startUpstream((req, res, request) => {
    seen.push({ body: request.body.toString(), te: req.headers['transfer-encoding'], trailers: { ...req.trailers } });
    res.end('ok');
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: undiciTransport() }));
  const raw = 'POST /with-trailers HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 42\r\n\r\n';
  const answer = await sendRaw(served.port, raw, 3000);
  assert.match(answer, /^HTTP\/1.1 200 /, answer);
  assert.equal(seen, [{ body: 'abc', te: 'chunked', trailers: {} }]);
  await served.close();
  await upstream.close();
});

test.run();
