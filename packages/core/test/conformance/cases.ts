// The transport conformance suite: one set of cases, run against every transport by the
// `*.test.ts` files beside it. A case that is about the network itself declares `network` with
// the reason it does not apply to an in-memory upstream; the runner prints that reason.
import { createHash } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, delay, fetchRaw, listen, memoryLogger, sendRaw, serveRelay, tlsFixture, waitFor } from '@relay/testkit';
import { createRelay, type RelayOptions, type Stage } from '../../src/index.js';
import { harness, open, pump, type Harness, type TransportSubject } from './harness.js';

/** One conformance case. */
export interface ConformanceCase {
  name: string;
  /** Set when the case is about the network itself: why it does not apply to an in-memory upstream. */
  network?: string;
  /** Set when the case is about HTTP/1.1 itself: why it does not apply to an HTTP/2 upstream. */
  http2?: string;
  run(h: Harness): Promise<void>;
}

const MiB = 1024 * 1024;
const pattern = Buffer.alloc(64 * 1024);
for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31) & 0xff;

function sha256(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

function hashOf(total: number): string {
  const hash = createHash('sha256');
  for (let sent = 0; sent < total; sent += pattern.length) hash.update(pattern);
  return hash.digest('hex');
}

function assertNoAddress(text: string) {
  assert.not.match(text, /127\.0\.0\.1|localhost|upstream\.test/, `the error body names an address: ${text}`);
  assert.not.match(text, /\bat \S+ \(/, `the error body shows a stack: ${text}`);
}

async function expectError(url: string, status: number, code: string) {
  const response = await fetchRaw(url);
  assert.is(response.status, status, `${code}: ${response.text}`);
  assert.ok(response.text.includes(code), response.text);
  assertNoAddress(response.text);
}

/** A relay, for cases that build their own upstream server, with `transport` under test. */
async function relayTo(h: Harness, targetBaseUrl: string, options: Partial<RelayOptions> = {}) {
  const served = await serveRelay(createRelay({ targetBaseUrl, ...options, transport: h.subject.create(() => {}, {}) }));
  h.defer(() => served.close());
  return served;
}

export const cases: ConformanceCase[] = [
  {
    name: 'methods: GET, POST, PUT, PATCH, DELETE, OPTIONS and PROPFIND reach the upstream as sent',
    async run(h) {
      const served = await h.serve((req, res) => {
        let bytes = 0;
        req.on('data', (chunk: Buffer) => (bytes += chunk.length));
        req.on('end', () => res.end(`${req.method} ${bytes}`));
      });
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND']) {
        const withBody = method !== 'GET' && method !== 'OPTIONS';
        const response = await fetchRaw(`${served.url}/m`, withBody ? { method, body: 'abc', headers: { 'content-length': '3' } } : { method });
        assert.is(response.status, 200, method);
        assert.is(response.text, `${method} ${withBody ? 3 : 0}`);
      }
      await served.close();
    },
  },
  {
    name: 'status codes and reason phrases pass through; redirects are not followed',
    async run(h) {
      const served = await h.serve((req, res) => {
        const status = Number(req.url!.slice(1));
        if (status >= 300 && status < 400) res.setHeader('location', '/elsewhere');
        if (req.httpVersionMajor === 2) res.writeHead(status);
        else res.writeHead(status, `Reason ${status}`);
        res.end(String(status));
      });
      for (const status of [200, 201, 202, 203, 301, 302, 303, 307, 308, 400, 401, 403, 404, 409, 418, 429, 500, 501, 502, 503, 504]) {
        const response = await fetchRaw(`${served.url}/${status}`);
        assert.is(response.status, status);
        // HTTP/2 has no reason phrase (RFC 9113 §8.3.1): the client gets Node's standard one.
        if (h.subject.upstream !== 'http2') assert.is(response.statusMessage, `Reason ${status}`);
        assert.is(response.text, String(status));
        if (status >= 300 && status < 400) assert.is(response.headers.location, '/elsewhere', 'the redirect reaches the client');
      }
      await served.close();
    },
  },
  {
    name: 'request headers reach the upstream as sent, repeated values kept, nothing added by the transport',
    async run(h) {
      let seen: string[] = [];
      const served = await h.serve((req, res) => {
        seen = req.rawHeaders;
        res.end();
      });
      await fetchRaw(`${served.url}/h`, {
        headers: { 'x-one': 'a', 'x-multi': ['1', '2'], authorization: 'Bearer t', 'content-type': 'text/plain' },
      });
      const names = new Set<string>();
      const values: Record<string, string[]> = {};
      for (let i = 0; i < seen.length; i += 2) {
        const name = seen[i]!.toLowerCase();
        // An HTTP/2 request's pseudo-headers (:method, :path, :authority with the Host) are its request line.
        if (name.startsWith(':')) continue;
        names.add(name);
        (values[name] ??= []).push(seen[i + 1]!);
      }
      assert.equal(values['x-one'], ['a']);
      assert.equal(values['x-multi']?.join(', '), '1, 2');
      assert.equal(values.authorization, ['Bearer t']);
      const expected = ['host', 'connection', 'x-one', 'x-multi', 'authorization', 'content-type', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port'];
      const extra = [...names].filter((name) => !expected.includes(name));
      assert.equal(extra, [], `headers the transport added: ${extra.join(', ')}`);
      await served.close();
    },
  },
  {
    name: 'response headers: two Set-Cookie stay two, repeated headers keep every value, hop-by-hop ones are dropped',
    async run(h) {
      const served = await h.serve((req, res) => {
        res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly']);
        res.setHeader('x-multi', ['1', '2']);
        // An HTTP/2 response cannot carry connection-specific headers (RFC 9113 §8.2.2; node:http2 throws).
        if (req.httpVersionMajor !== 2) {
          res.setHeader('connection', 'x-private');
          res.setHeader('x-private', 'secret');
          res.setHeader('keep-alive', 'timeout=99');
        }
        res.setHeader('content-type', 'text/plain');
        res.end('ok');
      });
      const response = await fetchRaw(`${served.url}/h`);
      const cookies = response.rawHeaders.filter((_, i) => i % 2 === 1 && response.rawHeaders[i - 1]!.toLowerCase() === 'set-cookie');
      assert.equal(cookies, ['a=1; Path=/', 'b=2; HttpOnly']);
      assert.is(response.headers['x-multi'], '1, 2');
      assert.is(response.headers['x-private'], undefined, 'a Connection-listed header passed');
      assert.not.ok(String(response.headers['keep-alive'] ?? '').includes('99'), 'the upstream Keep-Alive passed');
      assert.is(response.headers['content-type'], 'text/plain');
      await served.close();
    },
  },
  {
    name: 'path and query bytes reach the upstream exactly as the client sent them',
    async run(h) {
      let seen = '';
      const served = await h.serve((req, res) => {
        seen = req.url!;
        res.end();
      });
      const target = `/p/a'b/%7euser/caf%C3%A9/{x}|y?q='1'&r="2"&s=%2F&t=a+b&&u=%zz&`;
      const raw = await sendRaw(served.port, `GET ${target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1.1 200 /);
      assert.is(seen, target);
      await served.close();
    },
  },
  {
    name: 'a request body streams with backpressure: while the upstream does not read, the client is held back',
    async run(h) {
      const total = 64 * MiB;
      let reading = false;
      let startReading: (() => void) | null = null;
      let finish: (seen: { bytes: number; sha: string }) => void = () => {};
      const received = new Promise<{ bytes: number; sha: string }>((resolve) => (finish = resolve));
      const served = await h.serve((req, res) => {
        req.pause();
        startReading = () => {
          reading = true;
          const hash = createHash('sha256');
          let bytes = 0;
          req.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            hash.update(chunk);
          });
          req.on('end', () => {
            res.end('done');
            finish({ bytes, sha: hash.digest('hex') });
          });
          req.resume();
        };
      });
      const client = open(`${served.url}/upload`, { method: 'POST', headers: { 'content-length': total } });
      const upload = pump(client.req, total, pattern);
      await delay(800);
      const heldAt = upload.written();
      assert.not.ok(reading);
      assert.ok(startReading !== null, 'the upstream got the request head');
      assert.ok(heldAt < total / 2, `the client wrote ${(heldAt / MiB).toFixed(1)} MiB of ${total / MiB} while the upstream read nothing`);
      console.log(`    request backpressure: ${(heldAt / MiB).toFixed(1)} MiB accepted while the upstream read nothing`);
      (startReading as unknown as () => void)();
      const result = await received;
      assert.is(result.bytes, total);
      assert.is(result.sha, hashOf(total), 'every byte arrived in order');
      assert.is((await client.done).body.toString(), 'done');
      await served.close();
    },
  },
  {
    name: 'a response body streams with backpressure: while the client does not read, the upstream is held back',
    async run(h) {
      const total = 64 * MiB;
      let download: ReturnType<typeof pump> | null = null;
      const served = await h.serve((_req, res) => {
        res.writeHead(200, { 'content-length': total });
        download = pump(res, total, pattern);
      });
      const client = open(`${served.url}/download`);
      client.req.end();
      const res = await client.head;
      res.pause();
      await delay(800);
      const heldAt = download!.written();
      assert.ok(heldAt < total / 2, `the upstream wrote ${(heldAt / MiB).toFixed(1)} MiB of ${total / MiB} while the client read nothing`);
      console.log(`    response backpressure: ${(heldAt / MiB).toFixed(1)} MiB written while the client read nothing`);
      res.resume();
      const done = await client.done;
      assert.ok(done.complete);
      assert.is(done.body.length, total);
      assert.is(sha256(done.body), hashOf(total));
      await served.close();
    },
  },
  {
    name: 'bodies stream both ways at once: each request chunk is echoed back before the next is sent',
    async run(h) {
      const served = await h.serve((req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.flushHeaders();
        req.on('data', (chunk: Buffer) => res.write(chunk));
        req.on('end', () => res.end());
      });
      const client = open(`${served.url}/echo`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } });
      client.req.write('ping-0;');
      const res = await client.head;
      let echoed = '';
      res.on('data', (chunk: Buffer) => (echoed += chunk.toString()));
      for (let round = 0; round < 3; round++) {
        assert.ok(await waitFor(() => echoed.includes(`ping-${round};`), 3000), `round ${round} came back before the request ended: "${echoed}"`);
        if (round < 2) client.req.write(`ping-${round + 1};`);
      }
      client.req.end();
      const done = await client.done;
      assert.ok(done.complete);
      assert.is(echoed, 'ping-0;ping-1;ping-2;');
      await served.close();
    },
  },
  {
    name: 'HEAD, 204 and 304 carry no body; HEAD keeps its Content-Length',
    async run(h) {
      const served = await h.serve((req, res) => {
        if (req.url === '/head') {
          res.writeHead(200, { 'content-length': '12345', 'content-type': 'text/plain' });
          res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(12345));
        } else if (req.url === '/204') {
          res.writeHead(204, { 'x-empty': 'yes' });
          res.end();
        } else {
          res.writeHead(304, { etag: '"v1"' });
          res.end();
        }
      });
      const head = await sendRaw(served.port, 'HEAD /head HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
      assert.match(head, /^HTTP\/1.1 200 /);
      assert.match(head, /content-length: 12345/i);
      assert.ok(head.endsWith('\r\n\r\n'), 'nothing after the HEAD head');
      const noContent = await sendRaw(served.port, 'GET /204 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
      assert.match(noContent, /^HTTP\/1.1 204 /);
      assert.match(noContent, /x-empty: yes/i);
      assert.ok(noContent.endsWith('\r\n\r\n'));
      assert.not.match(noContent, /transfer-encoding/i);
      const notModified = await sendRaw(served.port, 'GET /304 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
      assert.match(notModified, /^HTTP\/1.1 304 /);
      assert.match(notModified, /etag: "v1"/i);
      assert.ok(notModified.endsWith('\r\n\r\n'));
      await served.close();
    },
  },
  {
    name: 'a gzip body arrives byte-identical with its Content-Encoding and Content-Length; no Accept-Encoding is added',
    async run(h) {
      const gzipped = gzipSync(Buffer.from('hello compressed world '.repeat(2000)));
      let acceptEncoding: string | undefined = 'unset';
      const served = await h.serve((req, res) => {
        acceptEncoding = req.headers['accept-encoding'];
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': gzipped.length, 'content-type': 'text/plain' });
        res.end(gzipped);
      });
      const response = await fetchRaw(`${served.url}/gzip`);
      assert.is(response.headers['content-encoding'], 'gzip');
      assert.is(response.headers['content-length'], String(gzipped.length));
      assert.ok(response.body.equals(gzipped), 'byte-identical');
      assert.is(acceptEncoding, undefined, 'the transport added an Accept-Encoding');
      await served.close();
    },
  },
  {
    name: 'request framing is kept: a length stays a length, chunked stays chunked whatever the method, an empty POST keeps Content-Length: 0',
    async run(h) {
      const served = await h.serve((req, res) => {
        let bytes = 0;
        req.on('data', (chunk: Buffer) => (bytes += chunk.length));
        req.on('end', () => res.end(JSON.stringify({ bytes, cl: req.headers['content-length'] ?? null, te: req.headers['transfer-encoding'] ?? null })));
      });
      const withLength = JSON.parse((await fetchRaw(`${served.url}/f`, { method: 'POST', body: Buffer.alloc(1000) })).text);
      assert.equal(withLength, { bytes: 1000, cl: '1000', te: null });
      for (const method of ['POST', 'DELETE', 'OPTIONS', 'GET']) {
        const client = open(`${served.url}/f`, { method, headers: { 'transfer-encoding': 'chunked' } });
        client.req.write('abc');
        client.req.end('def');
        const seen = JSON.parse((await client.done).body.toString());
        // HTTP/2 has no chunked coding: a body without a length is DATA frames up to END_STREAM.
        assert.equal(seen, { bytes: 6, cl: null, te: h.subject.upstream === 'http2' ? null : 'chunked' }, method);
      }
      const empty = JSON.parse((await fetchRaw(`${served.url}/f`, { method: 'POST', headers: { 'content-length': '0' } })).text);
      assert.equal(empty, { bytes: 0, cl: '0', te: null });
      const get = JSON.parse((await fetchRaw(`${served.url}/f`)).text);
      assert.equal(get, { bytes: 0, cl: null, te: null }, 'a GET without a body has no body headers');
      await served.close();
    },
  },
  {
    name: 'concurrent requests never mix: 32 at once each get their own answer',
    async run(h) {
      const served = await h.serve((req, res) => {
        setTimeout(() => res.end(req.url), Math.floor(Math.random() * 30));
      });
      const responses = await Promise.all(Array.from({ length: 32 }, (_, i) => fetchRaw(`${served.url}/n/${i}`)));
      responses.forEach((response, i) => assert.is(response.text, `/n/${i}`));
      await served.close();
    },
  },
  {
    name: 'keep-alive: sequential requests reuse one upstream connection',
    async run(h) {
      const served = await h.serve((_req, res) => res.end('ok'));
      for (let i = 0; i < 10; i++) assert.is((await fetchRaw(`${served.url}/k`)).text, 'ok');
      assert.is(served.sockets.size, 1, `10 sequential requests used ${served.sockets.size} upstream connections`);
      await served.close();
    },
  },
  {
    name: 'shutdown closes the upstream connections the transport kept alive',
    async run(h) {
      const served = await h.serve((_req, res) => res.end('ok'));
      await fetchRaw(`${served.url}/k`);
      const [socket] = [...served.sockets];
      assert.ok(socket !== undefined && !socket.destroyed, 'a kept-alive connection is open');
      await served.relay.shutdown();
      assert.ok(await waitFor(() => socket!.destroyed), 'the upstream connection was closed by shutdown');
      await served.close();
    },
  },
  {
    name: 'upstream reset before the head: 502 ERR_UPSTREAM_RESET, and the relay keeps serving',
    async run(h) {
      const served = await h.serve((req, res) => {
        if (req.url === '/ok') res.end('ok');
        else req.socket.destroy();
      });
      await expectError(`${served.url}/reset`, 502, 'ERR_UPSTREAM_RESET');
      assert.is((await fetchRaw(`${served.url}/ok`)).text, 'ok');
      await served.close();
    },
  },
  {
    name: 'upstream reset mid-body: the client sees an aborted response, never a complete one',
    async run(h) {
      for (const framing of ['length', 'chunked'] as const) {
        const logger = memoryLogger();
        const served = await h.serve(
          (_req, res) => {
            res.writeHead(200, framing === 'length' ? { 'content-length': '1000000' } : {});
            res.write(Buffer.alloc(64 * 1024, 97));
            setTimeout(() => res.socket?.destroy(), 50);
          },
          { logger },
        );
        const response = await fetchRaw(`${served.url}/big`);
        assert.is(response.status, 200);
        assert.is(response.complete, false, `${framing}: the client must see the abort`);
        assert.ok(response.body.length < 1_000_000);
        assert.ok(
          await waitFor(() => logger.lines.some((l) => l.message.includes('after it started') && l.fields.code === 'ERR_UPSTREAM_RESET')),
          `logged as ERR_UPSTREAM_RESET: ${JSON.stringify(logger.lines.map((l) => l.fields.code))}`,
        );
        assert.is((await fetchRaw(`${served.url}/big`)).complete, false, 'the relay keeps serving');
        await served.close();
      }
    },
  },
  {
    name: 'invalid HTTP from the upstream: 502 ERR_UPSTREAM_PROTOCOL',
    http2: 'node:http2 cannot write invalid frames; http2-transport.test.ts has an h2c upstream answering in HTTP/1.1',
    async run(h) {
      const served = await h.serve((req) => {
        req.socket.end('HTTP/1.1 abc nonsense\r\n\r\n');
      });
      await expectError(`${served.url}/bad`, 502, 'ERR_UPSTREAM_PROTOCOL');
      await served.close();
    },
  },
  {
    name: 'unreachable upstream: 502 ERR_UPSTREAM_UNREACHABLE',
    network: 'an in-memory upstream is always reachable',
    async run(h) {
      const port = await closedPort();
      const served = await relayTo(h, `http://127.0.0.1:${port}`);
      await expectError(`${served.url}/x`, 502, 'ERR_UPSTREAM_UNREACHABLE');
      await served.close();
    },
  },
  {
    name: 'TLS: an untrusted certificate is a 502 ERR_UPSTREAM_TLS; with tls.ca the https upstream answers',
    network: 'an in-memory upstream has no TLS handshake',
    async run(h) {
      const upstream = createHttpsServer(tlsFixture, (_req, res) => res.end('secure'));
      const url = (await listen(upstream)).replace('http:', 'https:');
      h.defer(() => {
        upstream.closeAllConnections();
        return new Promise((resolve) => upstream.close(resolve));
      });
      const untrusted = await relayTo(h, url);
      await expectError(`${untrusted.url}/x`, 502, 'ERR_UPSTREAM_TLS');
      await untrusted.close();
      const trusted = await relayTo(h, url, { tls: { ca: tlsFixture.cert } });
      assert.is((await fetchRaw(`${trusted.url}/x`)).text, 'secure');
      await trusted.close();
    },
  },
  {
    name: 'connect timeout: a TLS handshake that never completes is a 504 ERR_CONNECT_TIMEOUT',
    network: 'an in-memory connection has no connect phase',
    async run(h) {
      const sockets: Socket[] = [];
      const mute = createTcpServer((socket) => sockets.push(socket));
      const url = (await listen(mute)).replace('http:', 'https:');
      h.defer(() => {
        for (const socket of sockets) socket.destroy();
        return new Promise((resolve) => mute.close(resolve));
      });
      const served = await relayTo(h, url, { timeout: { connect: 300 }, tls: { rejectUnauthorized: false } });
      const started = Date.now();
      await expectError(`${served.url}/x`, 504, 'ERR_CONNECT_TIMEOUT');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 3000, `${elapsed} ms`);
      await served.close();
    },
  },
  {
    name: 'read timeout: an upstream silent before its head is a 504 ERR_READ_TIMEOUT',
    async run(h) {
      const served = await h.serve(() => {}, { timeout: { read: 300 } });
      const started = Date.now();
      await expectError(`${served.url}/silent`, 504, 'ERR_READ_TIMEOUT');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 3000, `${elapsed} ms`);
      await served.close();
    },
  },
  {
    name: 'read timeout is silence, not total time: a slow steady stream completes, a stall mid-body aborts it',
    async run(h) {
      const logger = memoryLogger();
      const served = await h.serve(
        (req, res) => {
          res.writeHead(200);
          let n = 0;
          const timer = setInterval(() => {
            res.write('.');
            if (++n === 8 || req.url === '/stall') {
              clearInterval(timer);
              if (n === 8) res.end();
            }
          }, 100);
          res.on('close', () => clearInterval(timer));
        },
        { timeout: { read: 400 }, logger },
      );
      const steady = await fetchRaw(`${served.url}/steady`);
      assert.ok(steady.complete, 'a stream that never pauses for 400 ms completes');
      assert.is(steady.text, '........');
      const stalled = await fetchRaw(`${served.url}/stall`);
      assert.is(stalled.status, 200);
      assert.is(stalled.complete, false, 'a stalled stream is aborted, not ended');
      assert.is(stalled.text, '.');
      assert.ok(
        await waitFor(() => logger.lines.some((l) => l.message.includes('after it started') && l.fields.code === 'ERR_READ_TIMEOUT')),
        `logged as ERR_READ_TIMEOUT: ${JSON.stringify(logger.lines.map((l) => l.fields.code))}`,
      );
      await served.close();
    },
  },
  {
    name: 'a timeout of 0 disables that phase',
    async run(h) {
      const served = await h.serve((_req, res) => {
        setTimeout(() => res.end('late'), 500);
      }, { timeout: { read: 0, connect: 1000, write: 1000, pool: 1000 } });
      assert.is((await fetchRaw(`${served.url}/late`)).text, 'late');
      await served.close();
    },
  },
  {
    name: 'write timeout: an upstream that stops reading the request body is a 504 ERR_WRITE_TIMEOUT',
    async run(h) {
      const served = await h.serve((req) => req.pause(), { timeout: { write: 300, read: 10_000 } });
      const client = open(`${served.url}/upload`, { method: 'POST', headers: { 'content-length': 256 * MiB } });
      pump(client.req, 256 * MiB, Buffer.alloc(MiB));
      const started = Date.now();
      const res = await client.head;
      res.resume();
      assert.is(res.statusCode, 504);
      assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
      client.req.destroy();
      await served.close();
    },
  },
  {
    name: 'pool timeout: with every connection busy, a waiting request is a 504 ERR_POOL_TIMEOUT that never reaches the upstream',
    network: 'an in-memory transport has no connection limit, so a request never waits for a connection',
    async run(h) {
      const urls: string[] = [];
      const served = await h.serve(
        (req, res) => {
          urls.push(req.url!);
          if (req.url === '/hold') setTimeout(() => res.end('held'), 1000);
          else res.end('quick');
        },
        { timeout: { pool: 200 } },
        { maxSockets: 1 },
      );
      const holding = fetchRaw(`${served.url}/hold`);
      assert.ok(await waitFor(() => urls.length === 1));
      await expectError(`${served.url}/quick`, 504, 'ERR_POOL_TIMEOUT');
      assert.is((await holding).text, 'held');
      assert.is((await fetchRaw(`${served.url}/quick`)).text, 'quick', 'the pool recovers');
      assert.equal(urls, ['/hold', '/quick'], 'the timed-out request never reached the upstream');
      await served.close();
    },
  },
  {
    name: 'a client that goes away before the head aborts the upstream request within a second',
    async run(h) {
      let closedAt = 0;
      let arrived = false;
      const served = await h.serve((_req, res) => {
        arrived = true;
        res.on('close', () => (closedAt = Date.now()));
      });
      const client = open(`${served.url}/wait`);
      client.req.end();
      assert.ok(await waitFor(() => arrived), 'the upstream got the request');
      const abortedAt = Date.now();
      client.req.destroy();
      assert.ok(await waitFor(() => closedAt > 0, 2000), 'the upstream response was closed');
      assert.ok(closedAt - abortedAt < 1000, `${closedAt - abortedAt} ms`);
      assert.ok(await waitFor(() => served.relay.inFlight === 0), 'nothing left in flight');
      await served.close();
    },
  },
  {
    name: 'a client that goes away during the body aborts the upstream within a second',
    async run(h) {
      let closedAt = 0;
      const served = await h.serve((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const timer = setInterval(() => res.write('tick\n'), 20);
        res.on('close', () => {
          clearInterval(timer);
          closedAt = Date.now();
        });
      });
      const client = open(`${served.url}/ticks`);
      client.req.end();
      const res = await client.head;
      await new Promise((resolve) => res.once('data', resolve));
      const abortedAt = Date.now();
      client.req.destroy();
      assert.ok(await waitFor(() => closedAt > 0, 2000), 'the upstream response was closed');
      assert.ok(closedAt - abortedAt < 1000, `${closedAt - abortedAt} ms`);
      assert.ok(await waitFor(() => served.relay.inFlight === 0), 'nothing left in flight');
      await served.close();
    },
  },
  {
    name: 'a client that goes away mid-upload aborts the upstream request within a second',
    async run(h) {
      let closedAt = 0;
      let bytes = 0;
      const served = await h.serve((req, res) => {
        req.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('close', () => (closedAt = Date.now()));
      });
      const client = open(`${served.url}/upload`, { method: 'POST', headers: { 'content-length': 10 * MiB } });
      client.req.write(Buffer.alloc(256 * 1024));
      assert.ok(await waitFor(() => bytes > 0), 'the upstream got the first bytes');
      const abortedAt = Date.now();
      client.req.destroy();
      assert.ok(await waitFor(() => closedAt > 0, 2000), 'the upstream request was closed');
      assert.ok(closedAt - abortedAt < 1000, `${closedAt - abortedAt} ms`);
      assert.ok(await waitFor(() => served.relay.inFlight === 0), 'nothing left in flight');
      await served.close();
    },
  },
  {
    name: 'a kept-alive connection the upstream drops as it is reused: a GET is sent once more on a new one, a POST with a body is a 502',
    http2: "an HTTP/2 request's socket is a proxy of its stream (destroying it resets one stream); sessions closed under streams are http2-transport.test.ts's GOAWAY and REFUSED_STREAM cases",
    async run(h) {
      const used = new WeakSet<object>();
      const seen: string[] = [];
      const served = await h.serve((req, res) => {
        if (used.has(req.socket)) {
          seen.push(`dropped ${req.method} ${req.url}`);
          req.socket.destroy();
          return;
        }
        used.add(req.socket);
        req.resume();
        req.on('end', () => {
          seen.push(`answered ${req.method} ${req.url}`);
          res.end('ok');
        });
        // One connection, so each request reuses the last one's: undici's pool would otherwise open another.
      }, {}, { maxSockets: 1 });
      assert.is((await fetchRaw(`${served.url}/first`)).text, 'ok');
      assert.is((await fetchRaw(`${served.url}/second`)).text, 'ok', 'the GET was sent again on a fresh connection');
      const post = await fetchRaw(`${served.url}/post`, { method: 'POST', body: 'abc', headers: { 'content-length': '3' } });
      assert.is(post.status, 502, 'a request with a body is never sent twice by the transport');
      assert.ok(post.text.includes('ERR_UPSTREAM_RESET'), post.text);
      assert.equal(seen, ['answered GET /first', 'dropped GET /second', 'answered GET /second', 'dropped POST /post']);
      await served.close();
    },
  },
  {
    name: 'a header value a stage made invalid is a 500 ERR_INTERNAL and nothing reaches the upstream',
    async run(h) {
      let reached = 0;
      const badHeader: Stage = {
        name: 'bad-header',
        wrap: (next) =>
          function badHeaderStage(request) {
            request.headers['x-bad'] = 'a\r\nInjected: yes';
            return next(request);
          },
      };
      const served = await h.serve(
        (_req, res) => {
          reached++;
          res.end();
        },
        { stages: [badHeader] },
      );
      await expectError(`${served.url}/x`, 500, 'ERR_INTERNAL');
      assert.is(reached, 0);
      await served.close();
    },
  },
];

/**
 * Registers every case on `test` for `subject` and prints `<transport>: N cases`, and the
 * cases that do not apply with the reason.
 */
export function registerConformance(test: Test, subject: TransportSubject): void {
  const h = harness(subject);
  const notApplicable: string[] = [];
  let count = 0;
  for (const testCase of cases) {
    if (testCase.network !== undefined && subject.upstream === 'memory') {
      notApplicable.push(`  not applicable: ${testCase.name} (${testCase.network})`);
      continue;
    }
    if (testCase.http2 !== undefined && subject.upstream === 'http2') {
      notApplicable.push(`  not applicable: ${testCase.name} (${testCase.http2})`);
      continue;
    }
    count++;
    test(testCase.name, () => testCase.run(h));
  }
  test.after.each(() => h.cleanup());
  console.log(`${subject.name}: ${count} cases${notApplicable.length > 0 ? `, ${notApplicable.length} not applicable` : ''}`);
  for (const line of notApplicable) console.log(line);
}
