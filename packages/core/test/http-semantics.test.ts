import http from 'node:http';
import http2 from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';
import { createRelay, http2Transport, httpTransport, type Stage } from '../src/index.js';

// Issue 15, the HTTP semantics both protocols share: trailers, 103 Early Hints, event streams.

/** An upstream whose chunked answer ends with an `x-checksum` trailer. */
async function trailingUpstream() {
  return startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
    res.write('part one, ');
    res.addTrailers({ 'x-checksum': 'sha256=abc' });
    res.end('part two');
  });
}

test('trailers reach an HTTP/1.1 client that sent TE: trailers, and only it; the upstream is asked for them', async () => {
  const upstream = await trailingUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  const withTe = await sendRaw(served.port, 'GET /t HTTP/1.1\r\nHost: gw\r\nTE: trailers\r\nConnection: close\r\n\r\n', 3000);
  assert.match(withTe, /\r\ntransfer-encoding: chunked\r\n/i);
  assert.match(withTe, /\r\n0\r\nx-checksum: sha256=abc\r\n\r\n$/i, withTe);
  assert.is(upstream.requests[0]!.headers.te, 'trailers');
  const without = await sendRaw(served.port, 'GET /t HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 3000);
  assert.not.match(without, /x-checksum: sha256/i);
  assert.match(without, /part one, \r\n[0-9a-f]+\r\npart two/);
  assert.is(upstream.requests[1]!.headers.te, undefined);
  await served.close();
  await upstream.close();
});

test('trailers reach an HTTP/2 client, and a stage can edit them', async () => {
  const upstream = await trailingUpstream();
  const editTrailers: Stage = {
    name: 'edit-trailers',
    wrap: (next) =>
      async function editTrailers(request) {
        const response = await next(request);
        const upstreamTrailers = response.trailers;
        if (upstreamTrailers === undefined) return response;
        return { ...response, trailers: () => ({ ...upstreamTrailers(), 'x-edited': 'by-stage' }) };
      },
  };
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [editTrailers] });
  const server = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const { body, trailers } = await new Promise<{ body: string; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
    const stream = session.request({ ':path': '/t', te: 'trailers' });
    let text = '';
    let received: http2.IncomingHttpHeaders = {};
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('trailers', (fields) => (received = fields));
    stream.on('end', () => resolve({ body: text, trailers: received }));
    stream.on('error', reject);
  });
  assert.is(body, 'part one, part two');
  assert.is(trailers['x-checksum'], 'sha256=abc');
  assert.is(trailers['x-edited'], 'by-stage');
  session.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await relay.shutdown();
  await upstream.close();
});

test('103 Early Hints from the upstream reach HTTP/1.1 and HTTP/2 clients before the final answer', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    setTimeout(() => res.end('page'), 100);
  });
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const h1 = http.createServer(relay.handle);
  await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
  const hints = await new Promise<{ status: number; link: string | undefined; final: number }>((resolve, reject) => {
    let seen = { status: 0, link: undefined as string | undefined };
    const req = http.get({ host: '127.0.0.1', port: (h1.address() as AddressInfo).port, path: '/page', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ...seen, final: res.statusCode! }));
    });
    req.on('information', (info) => (seen = { status: info.statusCode, link: info.headers.link as string | undefined }));
    req.on('error', reject);
  });
  assert.equal(hints, { status: 103, link: '</style.css>; rel=preload; as=style', final: 200 });

  const h2 = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(h2.address() as AddressInfo).port}`);
  const h2Hints = await new Promise<{ early: unknown; final: unknown }>((resolve, reject) => {
    const stream = session.request({ ':path': '/page' });
    let early: unknown = null;
    let final: unknown = null;
    stream.on('headers', (headers) => (early = [headers[':status'], headers.link]));
    stream.on('response', (headers) => (final = headers[':status']));
    stream.on('end', () => resolve({ early, final }));
    stream.on('error', reject);
    stream.resume();
  });
  assert.equal(h2Hints, { early: [103, '</style.css>; rel=preload; as=style'], final: 200 });
  session.close();
  await new Promise<void>((resolve) => h2.close(() => resolve()));
  await new Promise<void>((resolve) => h1.close(() => resolve()));
  await relay.shutdown();
  await upstream.close();
});

test('103 Early Hints from an HTTP/2 upstream reach the client through http2Transport', async () => {
  const upstream = http2.createServer((_req, res) => {
    res.writeEarlyHints({ link: '</app.js>; rel=preload; as=script' });
    setTimeout(() => res.end('page'), 100);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, transport: http2Transport() });
  const front = http.createServer(relay.handle);
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const hints = await new Promise<{ status: number; link: unknown; final: number; body: string }>((resolve, reject) => {
    let seen = { status: 0, link: undefined as unknown };
    const req = http.get({ host: '127.0.0.1', port: (front.address() as AddressInfo).port, path: '/page', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ ...seen, final: res.statusCode!, body }));
    });
    req.on('information', (info) => (seen = { status: info.statusCode, link: info.headers.link }));
    req.on('error', reject);
  });
  assert.equal(hints, { status: 103, link: '</app.js>; rel=preload; as=script', final: 200, body: 'page' });
  await new Promise<void>((resolve) => front.close(() => resolve()));
  await relay.shutdown();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

for (const [name, transport] of [['http', httpTransport], ['got', gotTransport], ['undici', undiciTransport]] as const) {
  test(`${name}: an event stream quiet for 3× the read timeout keeps going; a stalled plain download is still cut`, async () => {
    const upstream = await startUpstream((req, res) => {
      const type = req.url === '/events' ? 'text/event-stream; charset=utf-8' : 'application/octet-stream';
      res.writeHead(200, { 'content-type': type });
      res.write('data: first\n\n');
      setTimeout(() => res.end('data: second\n\n'), 900);
    });
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, timeout: { read: 300 }, transport: transport() }));
    const read = (path: string) =>
      new Promise<{ body: string; complete: boolean }>((resolve) => {
        http.get(`${served.url}${path}`, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ body, complete: true }));
          res.on('error', () => resolve({ body, complete: false }));
          res.on('aborted', () => resolve({ body, complete: false }));
        });
      });
    const events = await read('/events');
    assert.equal(events, { body: 'data: first\n\ndata: second\n\n', complete: true });
    const download = await read('/download');
    assert.equal(download, { body: 'data: first\n\n', complete: false }, 'the read timeout cut the quiet download');
    await delay(700);
    await served.close();
    await upstream.close();
  });
}

test('eventStreams is a transport option: [] turns the exemption off, other media types can be added', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('{"n":1}\n');
    setTimeout(() => res.end('{"n":2}\n'), 900);
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, timeout: { read: 300 }, transport: httpTransport({ eventStreams: ['application/x-ndjson'] }) }));
  const raw = await sendRaw(served.port, 'GET /feed HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 3000);
  assert.match(raw, /\{"n":2\}/);
  await served.close();
  await upstream.close();
  assert.throws(() => httpTransport({ eventStreams: 'text/event-stream' as unknown as string[] }), /eventStreams must be an array of media types/);
});

/** Sends a head with `Expect: 100-continue`, the body only after a `100`, and returns all the client read. */
function expectContinue(port: number, path: string, body: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let sentBody = false;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (!sentBody && text.startsWith('HTTP/1.1 100')) {
        sentBody = true;
        socket.write(body);
      }
    });
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
    socket.write(`POST ${path} HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    setTimeout(() => socket.destroy(), 3000);
  });
}

test("100 Continue end to end through server.on('checkContinue', relay.handle): only when the upstream sends it", async () => {
  const upstream = await startUpstream();
  upstream.server.on('checkContinue', (req, res) => {
    if (req.url === '/deny') {
      res.writeHead(401, { 'content-length': '6' }).end('denied');
      return;
    }
    res.writeContinue();
    upstream.server.emit('request', req, res);
  });
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const server = http.createServer(relay.handle);
  server.on('checkContinue', relay.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const accepted = await expectContinue(port, '/ok', 'payload');
  assert.match(accepted, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 /);
  assert.is(upstream.requests.at(-1)!.body.toString(), 'payload');
  assert.is(upstream.requests.at(-1)!.headers.expect, '100-continue');
  const denied = await expectContinue(port, '/deny', 'payload');
  assert.match(denied, /^HTTP\/1.1 401 /, 'no 100 before the refusal: the client never sent its body');
  assert.not.match(denied, /HTTP\/1.1 100/);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await relay.shutdown();
  await upstream.close();
});

test('without a checkContinue listener node:http answers 100 itself, and the upstream gets no Expect', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  const answer = await expectContinue(served.port, '/ok', 'payload');
  assert.match(answer, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 /);
  assert.is(upstream.requests[0]!.headers.expect, undefined);
  assert.is(upstream.requests[0]!.body.toString(), 'payload');
  await served.close();
  await upstream.close();
});

test.run();

