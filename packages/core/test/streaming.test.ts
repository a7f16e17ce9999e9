import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, sendRaw, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay } from '../src/index.js';

const gzipped = gzipSync(Buffer.from('hello compressed world '.repeat(500)));
let upstream: Upstream;
let served: RelayServer<Relay>;
const connections = new Set<unknown>();

test.before(async () => {
  upstream = await startUpstream(
    (req, res) => {
      const path = req.url ?? '/';
      if (path === '/gzip') {
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': gzipped.length, 'content-type': 'text/plain', vary: 'accept-encoding' });
        res.end(gzipped);
      } else if (path === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        let n = 0;
        const timer = setInterval(() => {
          res.write(`data: event ${++n} at ${Date.now()}\n\n`);
          if (n === 3) {
            clearInterval(timer);
            res.end();
          }
        }, 300);
      } else if (path === '/head') {
        res.writeHead(200, { 'content-length': '12345', 'content-type': 'text/plain' });
        res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(12345));
      } else if (path === '/204') {
        res.writeHead(204, { 'x-empty': 'yes' });
        res.end();
      } else if (path === '/304') {
        res.writeHead(304, { etag: '"v1"' });
        res.end();
      } else if (path === '/hash') {
        const hash = createHash('sha256');
        let bytes = 0;
        req.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          hash.update(chunk);
        });
        req.on('end', () => {
          res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), method: req.method, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null, ae: req.headers['accept-encoding'] ?? null }));
        });
      } else {
        res.end('ok');
      }
    },
    { streaming: true },
  );
  upstream.server.on('connection', (socket) => connections.add(socket));
  served = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
});

test.after(async () => {
  await served.close();
  await upstream.close();
});

test('a gzip body arrives byte-identical with its Content-Encoding and Content-Length; no Accept-Encoding is added', async () => {
  const response = await fetchRaw(`${served.url}/gzip`);
  assert.is(response.headers['content-encoding'], 'gzip');
  assert.is(response.headers['content-length'], String(gzipped.length));
  assert.ok(response.body.equals(gzipped), 'byte-identical');
  const seen = JSON.parse((await fetchRaw(`${served.url}/hash`)).text);
  assert.is(seen.ae, null, 'the relay added no Accept-Encoding');
});

test('SSE events reach the client as they are sent', async () => {
  const arrivals: number[] = [];
  let headAt = 0;
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const req = request(`${served.url}/sse`, { agent: false }, (res) => {
      headAt = Date.now();
      res.on('data', () => arrivals.push(Date.now()));
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end();
  });
  // The upstream flushes its head at once and sends an event every 300 ms.
  assert.ok(headAt - started < 250, `the head came at once (${headAt - started} ms)`);
  assert.ok(arrivals.length >= 3, `events arrived separately: ${arrivals.length}`);
  assert.ok(arrivals[0]! - started < 550, `first event at ${arrivals[0]! - started} ms`);
  assert.ok(arrivals[arrivals.length - 1]! - arrivals[0]! >= 450, 'events were spread out, not buffered');
});

test('HEAD, 204 and 304 have no body; HEAD keeps its Content-Length', async () => {
  const head = await sendRaw(served.port, 'HEAD /head HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.match(head, /^HTTP\/1.1 200 /);
  assert.match(head, /content-length: 12345/i);
  assert.ok(head.endsWith('\r\n\r\n'), 'nothing after the head');
  const noContent = await sendRaw(served.port, 'GET /204 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.match(noContent, /^HTTP\/1.1 204 /);
  assert.match(noContent, /x-empty: yes/i);
  assert.ok(noContent.endsWith('\r\n\r\n'));
  assert.not.match(noContent, /transfer-encoding/i);
  const notModified = await sendRaw(served.port, 'GET /304 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.match(notModified, /^HTTP\/1.1 304 /);
  assert.match(notModified, /etag: "v1"/i);
  assert.ok(notModified.endsWith('\r\n\r\n'));
});

test('Expect: 100-continue gets 100 Continue and the body arrives', async () => {
  const body = Buffer.alloc(100_000, 7);
  const result = await new Promise<{ continued: boolean; text: string }>((resolve, reject) => {
    let continued = false;
    const req = request(`${served.url}/hash`, {
      method: 'PUT',
      agent: false,
      headers: { expect: '100-continue', 'content-length': body.length },
    });
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ continued, text }));
    });
    req.on('error', reject);
  });
  assert.ok(result.continued, 'the client got 100 Continue');
  const seen = JSON.parse(result.text);
  assert.is(seen.bytes, body.length);
  assert.is(seen.sha256, createHash('sha256').update(body).digest('hex'));
});

test('request bodies stream intact: POST with a length, chunked POST, chunked DELETE and OPTIONS never reframed', async () => {
  const payload = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
  const digest = createHash('sha256').update(payload).digest('hex');
  const withLength = JSON.parse((await fetchRaw(`${served.url}/hash`, { method: 'POST', body: payload })).text);
  assert.equal([withLength.bytes, withLength.sha256, withLength.cl, withLength.te], [payload.length, digest, String(payload.length), null]);
  for (const method of ['POST', 'DELETE', 'OPTIONS']) {
    const seen = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request(`${served.url}/hash`, { method, agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text)));
      });
      req.on('error', reject);
      for (let offset = 0; offset < payload.length; offset += 256 * 1024) req.write(payload.subarray(offset, offset + 256 * 1024));
      req.end();
    });
    assert.equal([seen.method, seen.bytes, seen.sha256, seen.te, seen.cl], [method, payload.length, digest, 'chunked', null], method);
  }
});

test('an empty POST keeps its Content-Length: 0', async () => {
  const seen = JSON.parse((await fetchRaw(`${served.url}/hash`, { method: 'POST', headers: { 'content-length': '0' } })).text);
  assert.is(seen.cl, '0');
  assert.is(seen.bytes, 0);
});

test('upstream connections are kept alive and reused', async () => {
  const before = connections.size;
  for (let i = 0; i < 10; i++) assert.is((await fetchRaw(`${served.url}/plain`)).text, 'ok');
  assert.ok(connections.size - before <= 1, `opened ${connections.size - before} connections for 10 sequential requests`);
});

test.run();
