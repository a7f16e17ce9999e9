import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { delay, fetchRaw, memoryLogger, serveRelay, waitFor } from '@relay/testkit';
import { createRelay, inMemoryTransport, type RelayOptions } from '../src/index.js';
import { memorySocketPair } from '../src/transport/memory-socket.js';

const unhandled: unknown[] = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));

function through(listener: Parameters<typeof inMemoryTransport>[0], options: Partial<RelayOptions> = {}) {
  return serveRelay(createRelay({ targetBaseUrl: 'http://upstream', ...options, transport: inMemoryTransport(listener) }));
}

test('an Express app is the upstream: routes, JSON, two cookies and a 404 come back through the relay', async () => {
  const app = express();
  app.get('/test', (_req, res) => {
    res.cookie('session', 'abc', { httpOnly: true });
    res.cookie('theme', 'dark');
    res.json({ message: 'Hello from upstream' });
  });
  const served = await through(app, { mountPath: '/proxy' });
  const response = await fetchRaw(`${served.url}/proxy/test`);
  assert.is(response.status, 200);
  assert.equal(JSON.parse(response.text), { message: 'Hello from upstream' });
  assert.is(response.headers['set-cookie']?.length, 2);
  assert.is((await fetchRaw(`${served.url}/proxy/missing`)).status, 404, "Express's own 404 passes through");
  await served.close();
});

test('the upstream sees the relay as its peer and the client in X-Forwarded-For; an https target marks the socket encrypted', async () => {
  let seen: IncomingMessage | null = null;
  const listener = (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    seen = req;
    res.end();
  };
  const plain = await through(listener);
  await fetchRaw(`${plain.url}/x`);
  assert.is(seen!.socket.remoteAddress, '127.0.0.1');
  assert.is(seen!.headers['x-forwarded-for'], '127.0.0.1');
  assert.is(seen!.headers.host, 'upstream');
  assert.not.ok((seen!.socket as { encrypted?: boolean }).encrypted);
  await plain.close();
  const secure = await through(listener, { targetBaseUrl: 'https://upstream' });
  await fetchRaw(`${secure.url}/x`);
  assert.is((seen!.socket as { encrypted?: boolean }).encrypted, true);
  await secure.close();
});

test('a listener that throws: 502 ERR_UPSTREAM_RESET, the stack in an error log line, and the relay keeps serving', async () => {
  const logger = memoryLogger();
  const served = await through(
    (req, res) => {
      if (req.url === '/boom') throw new Error('handler exploded');
      res.end('fine');
    },
    { logger },
  );
  const response = await fetchRaw(`${served.url}/boom`);
  assert.is(response.status, 502);
  assert.ok(response.text.includes('ERR_UPSTREAM_RESET'));
  assert.not.ok(response.text.includes('exploded'), 'the error body does not show the upstream error');
  const line = logger.lines.find((l) => l.level === 'error');
  assert.ok(line, 'an error line');
  assert.is(line!.fields.error, 'handler exploded');
  assert.match(String(line!.fields.stack), /memory-transport\.test\.ts/);
  assert.is((await fetchRaw(`${served.url}/ok`)).text, 'fine');
  await served.close();
});

test('an async listener that rejects before the head is a 502; after the head the client sees an aborted response; no unhandled rejection', async () => {
  const logger = memoryLogger();
  const served = await through(
    async (req, res) => {
      if (req.url === '/late') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        await delay(30);
      }
      throw new Error(`rejected at ${req.url}`);
    },
    { logger },
  );
  const early = await fetchRaw(`${served.url}/early`);
  assert.is(early.status, 502);
  const late = await fetchRaw(`${served.url}/late`);
  assert.is(late.status, 200);
  assert.is(late.complete, false, 'the client must see the abort');
  assert.is(late.text, 'partial');
  assert.ok(await waitFor(() => logger.lines.filter((l) => l.level === 'error').length === 2), 'both failures logged');
  assert.equal(unhandled, []);
  await served.close();
});

test('inMemoryTransport needs a request listener: a TypeError naming it', () => {
  assert.throws(() => inMemoryTransport('http://x' as never), (error: Error) => error instanceof TypeError && error.message.includes('listener'));
});

test('ws accepts an in-memory connection: handleUpgrade on a MemorySocket, frames both ways, close code kept', async () => {
  // What @relay/ws can build an in-memory WebSocket upstream on: no port anywhere.
  const wss = new WebSocketServer({ noServer: true });
  const upstream = createServer();
  let serverClose = 0;
  upstream.on('upgrade', (req, socket: Duplex, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, binary) => ws.send(binary ? data : `echo ${String(data)}`));
      ws.on('close', (code) => (serverClose = code));
    });
  });
  const client = new WebSocket('ws://upstream/chat', {
    createConnection: (() => {
      const { client: end, server } = memorySocketPair();
      upstream.emit('connection', server);
      return end;
    }) as never,
  });
  await new Promise((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  const replies: string[] = [];
  client.on('message', (data) => replies.push(String(data)));
  client.send('hello');
  client.send(Buffer.from('bin'), { binary: true });
  assert.ok(await waitFor(() => replies.length === 2));
  assert.equal(replies, ['echo hello', 'bin']);
  const clientClosed = new Promise<number>((resolve) => client.once('close', resolve));
  client.close(4001, 'done');
  assert.is(await clientClosed, 4001, 'the client saw its close handshake complete');
  assert.ok(await waitFor(() => serverClose !== 0));
  assert.is(serverClose, 4001);
  wss.close();
});

test('requests with a body keep the in-memory connection alive: one upstream connection for POSTs, a chunked upload and GETs', async () => {
  // A TCP upstream's answer arrives in a later turn of the event loop, after the relay has ended its
  // request; the in-memory one must too, or the early-answer rule closes the connection after each POST.
  const sockets = new Set<unknown>();
  const served = await through((req, res) => {
    sockets.add(req.socket);
    let length = 0;
    req.on('data', (chunk: Buffer) => (length += chunk.length));
    req.on('end', () => res.end(`got ${length}`));
  });
  for (let index = 0; index < 4; index++) {
    const response = await fetchRaw(`${served.url}/upload`, { method: 'POST', body: 'hello world' });
    assert.is(response.text, 'got 11');
  }
  const chunked = await fetchRaw(`${served.url}/upload`, { method: 'PUT', body: Buffer.alloc(100_000, 1), headers: { 'transfer-encoding': 'chunked' } });
  assert.is(chunked.text, 'got 100000');
  assert.is((await fetchRaw(`${served.url}/read`)).text, 'got 0');
  assert.is(sockets.size, 1, 'every request went over the same in-memory connection');
  await served.close();
});

test.run();
