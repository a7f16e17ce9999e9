// Review s40b: `Expect: 100-continue` now reaches the routes (listeners' `checkContinue`), and the
// relay sends the Expect upstream end to end, so the client gets `100 Continue` only when the
// upstream sends it. An upstream that reads the body without ever sending 100 (an HTTP/1.0 server,
// Python's http.server with its default protocol_version, many embedded servers; RFC 9110
// §10.1.1: a server MAY omit 100) then leaves a client that waits for the 100 (node's http client,
// which never sends the body on its own) waiting until a timeout. Before the change node answered
// 100 at once and such uploads worked; nginx (request buffering on) answers 100 itself, Envoy by
// default too ("proxy_100_continue: false"), and RFC 9110 §10.1.1 lets a proxy answer 100 itself
// for an inbound server it believes to be HTTP/1.0. Today such a client gets, after timeouts.write
// (30 s by default), 408 ERR_CLIENT_TIMEOUT: it is blamed for waiting as RFC 9110 told it to.
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

test('a node http client that waits for 100 Continue before its body gets it (or at least its answer) from a route whose HTTP/1.0 upstream never sends 100', async () => {
  const body = Buffer.alloc(5000, 'x');
  const outcome = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => {
      req.destroy();
      resolve('no 100 Continue and no answer within 4 s');
    }, 4000);
    const req = httpRequest({ host: '127.0.0.1', port: plainPort, method: 'POST', path: '/legacy/upload', headers: { expect: '100-continue', 'content-length': body.length } });
    req.on('continue', () => req.end(body));
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
});

test('an HTTP/2 client that waits for 100 Continue (expect: 100-continue) gets it from a route whose HTTP/1.0 upstream never sends 100', async () => {
  const session = http2Connect(`https://localhost:${tlsPort}`, { ca: tlsFixture.cert });
  try {
    const body = Buffer.alloc(5000, 'x');
    const outcome = await new Promise<string>((resolve) => {
      const stream = session.request({ ':method': 'POST', ':path': '/legacy/upload', expect: '100-continue', 'content-length': String(body.length) }, { endStream: false });
      const timer = setTimeout(() => {
        stream.close();
        resolve('no 100 Continue and no answer within 4 s');
      }, 4000);
      stream.on('continue', () => stream.end(body));
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
  } finally {
    session.destroy();
  }
});

test.run();
