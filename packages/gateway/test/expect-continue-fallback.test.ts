// `Expect: 100-continue` reaches the routes (the listeners' `checkContinue`, so a bodyLimit can
// refuse a declared length before any upload) and goes upstream end to end. An upstream that reads
// the body without ever sending 100 (an HTTP/1.0 server, Python's http.server with its default
// protocol_version, many embedded servers; RFC 9110 §10.1.1: a server MAY omit it) would leave a
// client that waits for the 100 (node's http and http2 clients never send the body on their own)
// waiting until timeouts.write, then blamed with a 408. The relay sends the client a 100 itself
// when the upstream has sent neither a 100 nor a head within 1 s of the request going upstream
// (curl's own expect timeout; Apache's mod_proxy does the same), and the upload goes on
// (review s40b).
import { request as httpRequest } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, tlsFixture } from '@relay/testkit';
import { serve, type RunningGateway } from '../src/index.js';
import { configDir } from './bin.js';

const files = configDir();
let upstream: Server;
let upstreamPort = 0;
let running: RunningGateway;
let plainPort = 0;
let tlsPort = 0;
const sockets = new Set<Socket>();
/** What the upstream read of each request: its head, and how many body bytes followed. */
const seen: { head: string; bodyBytes: number }[] = [];

/** An HTTP/1.0 upstream: reads the head and the Content-Length body, then answers with the byte count. Never sends 100. */
function startHttp10Upstream(): Promise<void> {
  upstream = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buffered.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      const got = buffered.length - end - 4;
      if (got < length) return;
      seen.push({ head, bodyBytes: got });
      socket.end(`HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${String(got).length}\r\n\r\n${got}`);
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) => upstream.listen(0, '127.0.0.1', () => {
    upstreamPort = (upstream.address() as { port: number }).port;
    resolve();
  }));
}

test.before(async () => {
  await startHttp10Upstream();
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  const config = files.write(
    'gateway.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0 }',
      '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }',
      'routes:',
      '  - name: legacy',
      '    match: { path: /legacy }',
      `    upstream: http://127.0.0.1:${upstreamPort}`,
      '',
    ].join('\n'),
  );
  running = await serve({ config, logger: memoryLogger() as never, watch: false });
  plainPort = (running.servers[0]!.address() as { port: number }).port;
  tlsPort = (running.servers[1]!.address() as { port: number }).port;
});

test.after(async () => {
  await running?.stop();
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  files.cleanup();
});

/** Milliseconds from `start` to now. */
function since(start: number): number {
  return Date.now() - start;
}

test('HTTP/1.1: a node http client that waits for 100 Continue gets it from the relay after about 1 s when the HTTP/1.0 upstream never sends one, and the upload completes', async () => {
  seen.length = 0;
  const body = Buffer.alloc(5000, 'x');
  const start = Date.now();
  let continuedAfter = -1;
  const outcome = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => {
      req.destroy();
      resolve('no 100 Continue and no answer within 4 s');
    }, 4000);
    const req = httpRequest({ host: '127.0.0.1', port: plainPort, method: 'POST', path: '/legacy/upload', headers: { expect: '100-continue', 'content-length': body.length } });
    req.on('continue', () => {
      continuedAfter = since(start);
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve(`${res.statusCode} ${text}`);
      });
    });
    req.on('error', (error) => {
      clearTimeout(timer);
      resolve(`error ${error.message}`);
    });
  });
  assert.is(outcome, '200 5000', 'the upload reached the upstream');
  assertFallbackContinue(continuedAfter);
});

test('HTTP/2 (TLS): a client that waits for 100 Continue gets it from the relay after about 1 s when the HTTP/1.0 upstream never sends one, and the upload completes', async () => {
  seen.length = 0;
  let continuedAfter = -1;
  const start = Date.now();
  const session = http2Connect(`https://localhost:${tlsPort}`, { ca: tlsFixture.cert });
  try {
    const body = Buffer.alloc(5000, 'x');
    const outcome = await new Promise<string>((resolve) => {
      const stream = session.request({ ':method': 'POST', ':path': '/legacy/upload', expect: '100-continue', 'content-length': String(body.length) }, { endStream: false });
      const timer = setTimeout(() => {
        stream.close();
        resolve('no 100 Continue and no answer within 4 s');
      }, 4000);
      stream.on('continue', () => {
        continuedAfter = since(start);
        stream.end(body);
      });
      let status = 0;
      let text = '';
      stream.on('response', (headers) => (status = Number(headers[':status'])));
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => {
        clearTimeout(timer);
        resolve(`${status} ${text}`);
      });
      stream.on('error', (error) => {
        clearTimeout(timer);
        resolve(`error ${error.message}`);
      });
    });
    assert.is(outcome, '200 5000', 'the upload reached the upstream');
    assertFallbackContinue(continuedAfter);
  } finally {
    session.destroy();
  }
});

/** The 100 came from the relay's fallback: after its 1 s wait (not at once), well before the 30 s write timeout; the upstream got the Expect and the whole body. */
function assertFallbackContinue(continuedAfter: number): void {
  assert.ok(continuedAfter >= 900, `100 Continue after ${continuedAfter} ms: the relay waited for the upstream first`);
  assert.ok(continuedAfter < 3500, `100 Continue after ${continuedAfter} ms`);
  assert.is(seen.length, 1);
  assert.match(seen[0]!.head, /\r\nexpect: 100-continue/i, 'the Expect went upstream');
  assert.is(seen[0]!.bodyBytes, 5000);
}

test.run();
