// Review (crashes, hangs, leaks): each test names the behaviour the project rule asks for ("no
// `error` event or rejection may crash the process; every socket the relay opens, it owns and
// closes; bad input gets a clear 4xx/5xx, a log line, and the process keeps serving") and fails
// today. Uncaught exceptions and unhandled rejections are recorded, not fatal, so each test can
// say which one it saw.
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, delay, memoryLogger, sendRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { createRelay, httpTransport, type Relay, type Stage, type UpgradeTransport } from '../src/index.js';

const crashes: string[] = [];
process.on('uncaughtException', (error) => crashes.push(`uncaughtException: ${(error as Error)?.stack ?? String(error)}`));
process.on('unhandledRejection', (error) => crashes.push(`unhandledRejection: ${(error as Error)?.stack ?? String(error)}`));

/** The crashes recorded since `from`, after letting pending rejections surface. */
async function crashesSince(from: number): Promise<string[]> {
  await delay(50);
  return crashes.slice(from);
}

const answering = (answer: (request: unknown) => unknown): Stage => ({ name: 'answering', wrap: () => answer as never });

/** Every socket a server accepted, so a test can close what the relay left open. */
function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return sockets;
}

const connections = (server: Server) => new Promise<number>((resolve) => server.getConnections((_error, count) => resolve(count)));

/** A relay with one stage answering, served; one GET through it, with a 3 s bound. */
async function oneRequestThrough(stage: Stage): Promise<{ answer: string; inFlight: number; lines: string[] }> {
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: 'http://127.0.0.1:9', logger, stages: [stage] }));
  const sockets = trackSockets(served.server);
  try {
    const answer = await sendRaw(served.port, 'GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 3000).catch((error: Error) => `client error: ${error.message}`);
    await delay(50);
    return { answer, inFlight: served.relay.inFlight, lines: logger.lines.map((line) => line.message) };
  } finally {
    for (const socket of sockets) socket.destroy();
    await served.close();
  }
}

const offer = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';

test("a client that resets its connection while its h2c offer waits behind a pipelined answer crashes nothing: no uncaught 'error', nothing in flight, no connection left", async () => {
  const from = crashes.length;
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('slow'), 300);
    else res.end('ok');
  });
  const relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.on('error', () => {});
    await new Promise((resolve) => client.once('connect', resolve));
    // A plain GET whose answer takes a while, and an h2c offer pipelined behind it: the offer waits for that answer.
    client.write(`GET /slow HTTP/1.1\r\nHost: gw\r\n\r\nGET /a HTTP/1.1\r\nHost: gw\r\n${offer}\r\n`);
    await delay(80);
    client.resetAndDestroy();
    await delay(500);
    assert.equal(await crashesSince(from), [], 'a reset of the waiting connection must not be an uncaught error');
    assert.is(relay.inFlight, 0);
    assert.is(await connections(server), 0);
  } finally {
    server.closeAllConnections();
    await close(server);
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test('a stage that resolves with no response (undefined or null) gets the client a 500 and a log line; nothing stays in flight and nothing is rejected unhandled', async () => {
  for (const value of [undefined, null]) {
    const from = crashes.length;
    const { answer, inFlight, lines } = await oneRequestThrough(answering(async () => value));
    assert.match(answer, /^HTTP\/1\.1 500 /, `resolved ${value}: ${answer}`);
    assert.is(inFlight, 0, `resolved ${value}: the exchange stays in flight`);
    assert.ok(lines.length > 0, 'no log line says why');
    assert.equal(await crashesSince(from), []);
  }
});

test('a stage whose response body is not a Node stream (a string, a Buffer, a web ReadableStream) gets the client a 500; nothing stays in flight and nothing is rejected unhandled', async () => {
  for (const [name, body] of [
    ['string', 'hello'],
    ['Buffer', Buffer.from('hello')],
    ['web ReadableStream', new Response('hello').body],
  ] as const) {
    const from = crashes.length;
    const { answer, inFlight } = await oneRequestThrough(answering(async () => ({ status: 200, statusMessage: 'OK', headers: {}, body })));
    assert.match(answer, /^HTTP\/1\.1 500 /, `${name} body: ${JSON.stringify(answer)}`);
    assert.is(inFlight, 0, `${name} body: the exchange stays in flight`);
    assert.equal(await crashesSince(from), [], `${name} body`);
  }
});

test('a stage that rejects with an error whose message cannot be read (a throwing getter, a Proxy) gets the client a 500; nothing stays in flight', async () => {
  const unreadable = [
    Object.defineProperty(new Error('x'), 'message', {
      get() {
        throw new Error('message getter');
      },
    }),
    new Proxy(
      {},
      {
        get() {
          throw new Error('proxy trap');
        },
      },
    ),
  ];
  for (const reason of unreadable) {
    const from = crashes.length;
    const { answer, inFlight } = await oneRequestThrough(answering(() => Promise.reject(reason)));
    assert.match(answer, /^HTTP\/1\.1 500 /, JSON.stringify(answer));
    assert.is(inFlight, 0);
    assert.equal(await crashesSince(from), []);
  }
});

/** An upgrade transport that never gets a turn: the stage answers first. */
const idleWebsocket: UpgradeTransport = {
  kind: 'upgrade',
  name: 'idle-ws',
  bind: () => ({ startup() {}, shutdown() {}, handle: () => Promise.reject(new Error('not reached')) }),
};

const handshake = 'GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** A relay with a WebSocket transport and one stage answering its handshakes. */
async function oneHandshakeThrough(stage: Stage): Promise<{ answer: string; inFlight: number; open: number }> {
  const relay = createRelay({ targetBaseUrl: 'http://127.0.0.1:9', websocket: idleWebsocket, stages: [stage] });
  await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const sockets = trackSockets(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const answer = await sendRaw((server.address() as AddressInfo).port, handshake, 1500).catch((error: Error) => `client error: ${error.message}`);
    await delay(50);
    return { answer, inFlight: relay.inFlight, open: await connections(server) };
  } finally {
    // A socket the relay left open must not keep this file from finishing: the test closes it.
    for (const socket of sockets) socket.destroy();
    await close(server);
    await relay.shutdown({ timeout: 300 });
  }
}

test('a WebSocket handshake whose stage resolves with no response is refused with a 500 and closed; nothing stays in flight and nothing is rejected unhandled', async () => {
  const from = crashes.length;
  const { answer, inFlight, open } = await oneHandshakeThrough(answering(async () => undefined));
  assert.match(answer, /^HTTP\/1\.1 500 /, JSON.stringify(answer));
  assert.is(inFlight, 0);
  assert.is(open, 0, 'the client socket is left open');
  assert.equal(await crashesSince(from), []);
});

test('a WebSocket handshake refused by a stage with a body that is not a stream is answered and closed; nothing is rejected unhandled', async () => {
  const from = crashes.length;
  const { answer, open } = await oneHandshakeThrough(answering(async () => ({ status: 403, statusMessage: 'Forbidden', headers: {}, body: 'no' })));
  assert.match(answer, /^HTTP\/1\.1 (403|500) /, JSON.stringify(answer));
  assert.is(open, 0, 'the client socket is left open after the head');
  assert.equal(await crashesSince(from), []);
});

test('a WebSocket handshake answered by a stage with status 0 gets a 500, as a plain request does, never the status line "HTTP/1.1 0"', async () => {
  const { answer } = await oneHandshakeThrough(answering(async () => ({ status: 0, statusMessage: '', headers: {}, body: null })));
  assert.match(answer, /^HTTP\/1\.1 500 /, JSON.stringify(answer));
});

test('a logger whose methods return rejected promises (an async sink that fails) causes no unhandled rejection; the request is still answered', async () => {
  const from = crashes.length;
  const failing = async () => {
    throw new Error('log sink down');
  };
  // An unreachable upstream: the relay logs the failure (warn) and answers 502.
  const served = await serveRelay(createRelay({ targetBaseUrl: 'http://127.0.0.1:9', logger: { debug: failing, info: failing, warn: failing, error: failing } }));
  try {
    const answer = await sendRaw(served.port, 'GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 3000);
    assert.match(answer, /^HTTP\/1\.1 502 /);
    assert.equal(await crashesSince(from), []);
  } finally {
    await served.close();
  }
});

/** An upstream that sends a 64 MiB body as fast as the relay takes it. */
function bigDownload(res: ServerResponse): void {
  res.writeHead(200, { 'content-length': String(64 * 1024 * 1024) });
  const chunk = Buffer.alloc(64 * 1024, 120);
  let sent = 0;
  const step = (): void => {
    while (sent < 1024 && !res.destroyed) {
      sent++;
      if (!res.write(chunk)) {
        res.once('drain', step);
        return;
      }
    }
  };
  step();
}

/** A client that reads the head and stops reading. */
async function stalledClient(port: number): Promise<Socket> {
  const client = connect(port, '127.0.0.1');
  client.on('error', () => {});
  client.write('GET /download HTTP/1.1\r\nHost: gw\r\n\r\n');
  await new Promise<void>((resolve) => client.once('data', () => resolve(client.pause() as unknown as void)));
  return client;
}

const slowClientLines = (lines: { message: string; fields: Record<string, unknown> }[]) => lines.filter((line) => line.fields.code === 'ERR_CLIENT_TIMEOUT');

test('httpTransport cuts a download left unread after slowClientTimeout once: one ERR_CLIENT_TIMEOUT line, no second cut from a stall timer armed after the abort', async () => {
  const upstream = await startUpstream((_req, res) => bigDownload(res), { streaming: true });
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: httpTransport({ slowClientTimeout: 500 }), timeout: { read: 20_000 }, logger }));
  let client: Socket | null = null;
  try {
    client = await stalledClient(served.port);
    assert.ok(await waitFor(() => slowClientLines(logger.lines).length > 0, 5000), 'the stalled download was not cut');
    // Twice slowClientTimeout: a stall timer armed by a pause of the already destroyed body would have fired.
    await delay(1500);
    assert.is(slowClientLines(logger.lines).length, 1, JSON.stringify(logger.lines.map((line) => line.message)));
  } finally {
    client?.destroy();
    await served.close();
    await upstream.close();
  }
});

test('relay.shutdown() aborting a stalled download leaves no stall timer behind: no ERR_CLIENT_TIMEOUT line after "relay stopped"', async () => {
  const upstream = await startUpstream((_req, res) => bigDownload(res), { streaming: true });
  const logger = memoryLogger();
  const relay: Relay = createRelay({ targetBaseUrl: upstream.url, transport: httpTransport({ slowClientTimeout: 600 }), timeout: { read: 20_000 }, logger });
  const served = await serveRelay(relay);
  let client: Socket | null = null;
  try {
    client = await stalledClient(served.port);
    await delay(200); // the body is paused: the stall timer runs
    await relay.shutdown({ timeout: 100 });
    const stoppedAt = logger.lines.length;
    await delay(1500);
    assert.equal(
      logger.lines.slice(stoppedAt).map((line) => `${line.message} ${String(line.fields.code ?? '')}`),
      [],
      'a stall timer outlived relay.shutdown() and cut the aborted exchange again',
    );
  } finally {
    client?.destroy();
    await served.close();
    await upstream.close();
  }
});

test.run();
