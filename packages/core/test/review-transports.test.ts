// Review s35: transport parity and relay.fetch. Each test names the behaviour it expects and
// fails today; the report beside the branch says which transport differs and why.
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, listen, listenHttp2, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { gotTransport } from '@relay/core/got';
import { undiciTransport } from '@relay/core/undici';
import { createRelay, http2Transport, httpTransport, type Transport } from '../src/index.js';

/** A raw TCP upstream that answers every request it reads with `answer` (written as latin1 bytes). */
async function rawUpstream(answer: (socket: Socket) => void): Promise<{ url: string; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', () => answer(socket));
  });
  const url = await listen(server);
  return {
    url,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The bytes of the first value of response header `name`, as they came off the wire. */
function headerBytes(rawHeaders: string[], name: string): string | null {
  const index = rawHeaders.findIndex((field, i) => i % 2 === 0 && field.toLowerCase() === name);
  return index < 0 ? null : Buffer.from(rawHeaders[index + 1]!, 'latin1').toString('hex');
}

test('relay.fetch answers an upstream 205 Reset Content with a 205 Response (it never hangs, nothing is rejected unhandled)', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(205, { 'content-length': '0' });
    res.end();
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const outcome = await Promise.race([
      relay.fetch(new Request('http://gw/reset-form')).then((response) => response.status),
      delay(3000).then(() => 'no Response within 3 s'),
    ]);
    await delay(50);
    assert.is(outcome, 205);
    assert.equal(unhandled.map(String), []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await relay.shutdown({ timeout: 200 });
    await upstream.close();
  }
});

test('http2Transport relays the upstream’s 100 Continue to a client whose Expect goes end to end (checkContinue), as the HTTP/1.1 transports do', async () => {
  // An h2c upstream through node:http2's compatibility API: it answers `Expect: 100-continue` with a 100 itself.
  const upstream = await listenHttp2(
    createHttp2Server((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.end(`got ${Buffer.concat(chunks).length}`));
    }),
  );
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, transport: http2Transport(), logger: memoryLogger(), timeout: { read: 3000, write: 3000 } }),
  );
  served.server.on('checkContinue', served.relay.handle);
  try {
    const started = Date.now();
    const outcome = await new Promise<{ status: number; body: string; continued: boolean }>((resolve, reject) => {
      let continued = false;
      // A client that sends its body only after 100 Continue, as node:http's and browsers' do.
      const req = request(`${served.url}/upload`, { method: 'POST', agent: false, headers: { expect: '100-continue', 'content-length': '5' } });
      req.on('continue', () => {
        continued = true;
        req.end('hello');
      });
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), continued });
          req.destroy();
        });
      });
    });
    assert.ok(outcome.continued, `the client never got 100 Continue; it got ${outcome.status} ${outcome.body.trim()} after ${Date.now() - started} ms`);
    assert.is(outcome.status, 200);
    assert.is(outcome.body, 'got 5');
  } finally {
    await served.close();
    await upstream.close();
  }
});

/** Relays one answer of `raw`'s upstream through `transport` and checks the latin1 byte of its `X-File` header arrived as such. */
async function latin1HeaderThrough(transport: Transport, answer: (socket: Socket) => void): Promise<void> {
  const upstream = await rawUpstream(answer);
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport, logger: memoryLogger() }));
  try {
    const response = await fetchRaw(`${served.url}/file`);
    assert.is(response.text, 'ok');
    assert.is(headerBytes(response.rawHeaders, 'x-file'), '636166e9', 'é must stay the byte e9, not become UTF-8 c3 a9');
  } finally {
    await served.close();
    await upstream.close();
  }
}

const latin1Head = Buffer.from('HTTP/1.1 200 OK\r\nX-File: caf\u00e9\r\nContent-Length: 2\r\n\r\n', 'latin1');

test('a latin1 response header byte reaches the client unchanged when the upstream sends its head before its body (httpTransport)', async () => {
  await latin1HeaderThrough(httpTransport(), (socket) => {
    socket.write(latin1Head);
    setTimeout(() => socket.write('ok'), 50);
  });
});

test('gotTransport relays a latin1 response header byte unchanged, as httpTransport and undiciTransport do', async () => {
  await latin1HeaderThrough(gotTransport(), (socket) => socket.write(Buffer.concat([latin1Head, Buffer.from('ok')])));
});

test('undiciTransport answers a response head over 16 KiB with 502 ERR_UPSTREAM_PROTOCOL, as httpTransport and gotTransport do', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.setHeader('x-big', 'a'.repeat(20_000));
    res.end('ok');
  });
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: undiciTransport(), logger }));
  try {
    const response = await fetchRaw(`${served.url}/big-head`);
    assert.is(response.status, 502, response.text);
    assert.ok(response.text.includes('ERR_UPSTREAM_PROTOCOL'), response.text);
    assert.equal(
      logger.lines.filter((line) => line.level === 'error').map((line) => line.message),
      [],
      'an upstream fault is not a relay pipeline failure',
    );
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('httpTransport cuts a download left unread after slowClientTimeout even when timeout.read is longer, as undiciTransport does', async () => {
  let cutAt = 0;
  const started = Date.now();
  const upstream = await startUpstream(
    (_req: IncomingMessage, res: ServerResponse) => {
      res.on('close', () => {
        if (!res.writableFinished) cutAt = Date.now() - started;
      });
      res.writeHead(200, { 'content-length': String(32 * 1024 * 1024) });
      const chunk = Buffer.alloc(64 * 1024, 120);
      let sent = 0;
      const step = () => {
        while (sent < 512) {
          sent++;
          if (!res.write(chunk)) {
            res.once('drain', step);
            return;
          }
        }
        res.end();
      };
      step();
    },
    { streaming: true },
  );
  const relay = createRelay({
    targetBaseUrl: upstream.url,
    transport: httpTransport({ slowClientTimeout: 1000 }),
    timeout: { read: 15_000 },
    logger: memoryLogger(),
  });
  try {
    // A Response whose body the caller never reads: the slowest client there is.
    const response = await relay.fetch(new Request('http://gw/download'));
    assert.is(response.status, 200);
    assert.ok(await waitFor(() => cutAt > 0, 6000), 'the unread download was not cut within 6 s (slowClientTimeout is 1 s)');
    await response.body?.cancel().catch(() => {});
  } finally {
    await relay.shutdown({ timeout: 200 });
    await upstream.close();
  }
});

test.run();
