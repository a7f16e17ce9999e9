// Review s37 (issue 20, bodies: compress(); issue 23, the plain planner): what a compressed response keeps
// (trailer fields), which streams are flushed as they arrive (NDJSON, event streams over HTTP/2), which bodiless
// statuses are never given content (205), and compressionPlanner() against the stage on one table.
// Black-box: real upstreams on 127.0.0.1, real clients (node:http, node:http2, fetch).
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { fetchRaw, listenHttp2, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { compress, compressionPlanner } from '../src/index.js';

const text3k = 'lorem ipsum dolor sit amet '.repeat(120);

/** GET with `TE: trailers`: the decoded body, its Content-Encoding and the trailer fields received. */
function getWithTrailers(url: string, acceptEncoding: string): Promise<{ coding: string | undefined; body: string; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { te: 'trailers', 'accept-encoding': acceptEncoding }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => {
        const raw = Buffer.concat(parts);
        const coding = res.headers['content-encoding'];
        const body = coding === 'gzip' ? zlib.gunzipSync(raw).toString() : raw.toString();
        resolve({ coding, body, trailers: res.trailers });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

test('compress: a compressed response keeps the upstream trailer fields for a client that takes them (TE: trailers)', async () => {
  // core types.ts ProxyResponse.trailers: "They reach clients that take trailers". Envoy's compressor finishes the
  // stream in encodeTrailers and passes the trailers on; compressing the body does not make Server-Timing wrong.
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'server-timing' });
    res.write(text3k);
    res.addTrailers({ 'server-timing': 'db;dur=53' });
    res.end();
  });
  const plain = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  const compressed = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress()] }));
  try {
    const without = await getWithTrailers(plain.url, 'gzip');
    assert.is(without.trailers['server-timing'], 'db;dur=53', 'the relay alone forwards the trailers');
    const withCompress = await getWithTrailers(compressed.url, 'gzip');
    assert.is(withCompress.coding, 'gzip');
    assert.is(withCompress.body, text3k);
    assert.is(withCompress.trailers['server-timing'], 'db;dur=53', 'compress() dropped the trailer fields');
  } finally {
    await compressed.close();
    await plain.close();
    await upstream.close();
  }
});

test('compress: an NDJSON stream of unknown length (a default compressible type) reaches the client line by line', async () => {
  // README: "It streams: nothing is buffered". Envoy's compressor flushes after every data frame
  // (compress(data, end_stream ? Finish : Flush)); Caddy's reverse_proxy flushes at once for responses of unknown
  // length and its encode flushes the encoder with them. A streamed NDJSON answer (logs, LLM tokens) must not wait
  // in the gzip buffer for the end of the response.
  let firstLineRead!: () => void;
  const clientReadFirst = new Promise<void>((resolve) => (firstLineRead = resolve));
  let upstreamEnded = false;
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('{"line":1}\n');
    // The second line waits for the client to have read the first (or 4 s, when it never does).
    const timer = setTimeout(finish, 4000);
    void clientReadFirst.then(finish);
    function finish(): void {
      clearTimeout(timer);
      if (upstreamEnded) return;
      upstreamEnded = true;
      res.end('{"line":2}\n');
    }
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress()] }));
  try {
    const result = await new Promise<{ coding: string | undefined; text: string; firstBeforeEnd: boolean }>((resolve, reject) => {
      const req = request(relay.url, { headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
        const gunzip = zlib.createGunzip();
        let text = '';
        let firstBeforeEnd = false;
        res.pipe(gunzip);
        gunzip.on('data', (part: Buffer) => {
          text += part.toString();
          if (text.includes('{"line":1}') && !upstreamEnded) firstBeforeEnd = true;
          if (text.includes('{"line":1}')) firstLineRead();
        });
        gunzip.on('end', () => resolve({ coding: res.headers['content-encoding'], text, firstBeforeEnd }));
        gunzip.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    assert.is(result.coding, 'gzip');
    assert.is(result.text, '{"line":1}\n{"line":2}\n');
    assert.ok(result.firstBeforeEnd, 'the first line reached the client only when the upstream ended the response');
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('compress: a 205 Reset Content is never given content (no Content-Encoding, no gzip bytes)', async () => {
  // RFC 9110 §15.3.6: "a server MUST NOT generate content in a 205 response". compress() leaves 204 alone for the
  // same reason; an empty 205 turned into 20 bytes of gzip is content the relay generated.
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(205, { 'content-type': 'text/html' });
    res.end();
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress()] }));
  try {
    const raw = await sendRaw(relay.port, 'GET /form HTTP/1.1\r\nHost: gw\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n', 3000);
    assert.match(raw, /^HTTP\/1\.1 205/);
    assert.not.match(raw, /content-encoding/i, `a Content-Encoding on a 205:\n${JSON.stringify(raw)}`);
    const content = raw.slice(raw.indexOf('\r\n\r\n') + 4);
    assert.ok(content === '' || content === '0\r\n\r\n', `the 205 carries content: ${JSON.stringify(content)}`);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('compress (regression): over an HTTP/2 front, an event stream arrives event by event, gzip', async () => {
  // Issue 20: "SSE through compress() arriving event by event"; the HTTP/2 front writes through node:http2's
  // compatibility response, whose buffering differs from HTTP/1.1's.
  let sendSecond!: () => void;
  const second = new Promise<void>((resolve) => (sendSecond = resolve));
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: one\n\n');
    const timer = setTimeout(sendSecond, 4000);
    void second.then(() => {
      clearTimeout(timer);
      res.end('data: two\n\n');
    });
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [compress()] });
  await relay.startup();
  const front = await listenHttp2(http2.createServer(relay.handle));
  const session = http2.connect(front.url);
  session.on('error', () => {});
  try {
    const order: string[] = [];
    const coding = await new Promise<unknown>((resolve, reject) => {
      const stream = session.request({ ':path': '/events', 'accept-encoding': 'gzip' });
      let encoding: unknown;
      stream.on('response', (headers) => (encoding = headers['content-encoding']));
      const gunzip = zlib.createGunzip();
      stream.pipe(gunzip);
      gunzip.on('data', (part: Buffer) => {
        order.push(part.toString());
        if (order.length === 1) sendSecond();
      });
      gunzip.on('end', () => resolve(encoding));
      gunzip.on('error', reject);
    });
    assert.is(coding, 'gzip');
    assert.equal(order, ['data: one\n\n', 'data: two\n\n']);
  } finally {
    session.destroy();
    await front.close();
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

/** Drops Accept-Encoding toward the upstream, so every coding the client sees is compress()'s. */
const noUpstreamCoding: Stage = {
  name: 'no-upstream-coding',
  wrap: (next) =>
    function noUpstreamCodingStage(request) {
      delete request.headers['accept-encoding'];
      return next(request);
    },
};

test('compressionPlanner (regression): the same coding and Vary as compress() on one table of real responses', async () => {
  // Issue 23: "the plain functions give the same results as the stages on the same inputs (one table of cases run
  // both ways)". Each row: the request method and Accept-Encoding, the upstream status and headers.
  const rows: Array<{ method: string; acceptEncoding?: string; status: number; headers: Record<string, string> }> = [
    { method: 'GET', acceptEncoding: 'gzip, br', status: 200, headers: { 'content-type': 'application/json' } },
    { method: 'GET', acceptEncoding: 'br;q=0.5, gzip', status: 200, headers: { 'content-type': 'text/html; charset=utf-8' } },
    { method: 'GET', acceptEncoding: 'gzip', status: 404, headers: { 'content-type': 'text/html' } },
    { method: 'GET', acceptEncoding: 'identity;q=0', status: 200, headers: { 'content-type': 'text/html' } },
    { method: 'GET', status: 200, headers: { 'content-type': 'text/html' } },
    { method: 'GET', acceptEncoding: '*;q=0, gzip;q=0.1', status: 200, headers: { 'content-type': 'text/css' } },
    { method: 'GET', acceptEncoding: 'gzip', status: 200, headers: { 'content-type': 'text/plain', 'content-length': '10' } },
    { method: 'GET', acceptEncoding: 'gzip', status: 200, headers: { 'content-type': 'image/png' } },
    { method: 'GET', acceptEncoding: 'gzip', status: 200, headers: { 'content-type': 'text/html', 'cache-control': 'public, No-Transform' } },
    { method: 'GET', acceptEncoding: 'gzip', status: 200, headers: { 'content-type': 'text/html', 'content-encoding': 'identity' } },
    { method: 'HEAD', acceptEncoding: 'gzip', status: 200, headers: { 'content-type': 'text/plain' } },
    { method: 'GET', acceptEncoding: 'gzip', status: 304, headers: {} },
    { method: 'POST', acceptEncoding: 'gzip', status: 304, headers: { 'content-type': 'text/plain' } },
    { method: 'GET', acceptEncoding: 'gzip', status: 204, headers: { 'content-type': 'text/plain' } },
  ];
  const upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const row = rows[Number(req.headers['x-row'])]!;
    res.writeHead(row.status, row.headers);
    res.end(req.method === 'HEAD' || row.status === 204 || row.status === 304 ? undefined : row.headers['content-length'] === '10' ? '0123456789' : text3k);
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress(), noUpstreamCoding] }));
  const plan = compressionPlanner();
  try {
    for (const [index, row] of rows.entries()) {
      const headers: Record<string, string> = { 'x-row': String(index) };
      if (row.acceptEncoding !== undefined) headers['accept-encoding'] = row.acceptEncoding;
      const answer = await fetchRaw(`${relay.url}/r`, { method: row.method, headers });
      const planned = plan(row.method, row.acceptEncoding, row.status, { ...row.headers });
      const label = `row ${index} ${JSON.stringify(row)}`;
      // A 304 carries no Content-Encoding (README): the planner's coding is that of the 200 it stands for.
      if (row.status !== 304) assert.is(answer.headers['content-encoding'] ?? null, planned.coding === null ? (row.headers['content-encoding'] ?? null) : planned.coding, label);
      assert.is(/accept-encoding/i.test(String(answer.headers.vary ?? '')), planned.vary, label);
    }
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('compress (regression): fetch() decodes br and gzip, Vary names Accept-Encoding once when the upstream already did', async () => {
  // RFC 9110 §12.5.5: Vary lists a field once; nginx's gzip_vary and Envoy's insertVaryHeader do not repeat it.
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', vary: 'origin, accept-encoding', etag: '"j1"' });
    res.end(JSON.stringify({ text: text3k }));
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress(), noUpstreamCoding] }));
  try {
    for (const coding of ['br', 'gzip']) {
      const response = await fetch(`${relay.url}/j`, { headers: { 'accept-encoding': coding } });
      assert.is(response.headers.get('content-encoding'), coding);
      assert.is(response.headers.get('vary'), 'origin, accept-encoding');
      assert.is(response.headers.get('etag'), 'W/"j1"');
      assert.equal(await response.json(), { text: text3k });
    }
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test.run();
