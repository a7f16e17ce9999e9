import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect as connectTcp } from 'node:net';
import type { Duplex } from 'node:stream';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, type Relay, type RelayOptions, type UpgradeTransport } from '@relay/core';
import { close, fetchRaw, listen, startUpstream, type Upstream } from '@relay/testkit';
import { routeUpgrades, toConnect } from '../src/index.js';
import { frameworks } from './apps.js';

// Upgrade routing by mount path. @relay/ws is built elsewhere: a minimal WebSocket transport
// here completes each accepted handshake with `ws` and echoes messages tagged with the relay's
// name and the upstream path the handshake was mapped to.

/** A stand-in WebSocket transport: accepts every handshake and echoes `name path message`. */
function echoWebsocket(name: string): UpgradeTransport & { sessions: Set<WebSocket> } {
  const sessions = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true });
  return {
    kind: 'upgrade',
    name: 'echo-ws',
    sessions,
    bind: () => ({
      startup() {},
      shutdown() {
        for (const session of sessions) session.close(1001, 'going away');
      },
      async handle(request) {
        return {
          status: 101,
          statusMessage: 'Switching Protocols',
          headers: {},
          body: null,
          upgrade: {
            accept(incoming: IncomingMessage, socket: Duplex, head: Buffer) {
              wss.handleUpgrade(incoming, socket, head, (session) => {
                sessions.add(session);
                session.on('close', () => sessions.delete(session));
                session.on('message', (data) => session.send(`${name} ${request.path} ${String(data)} ${request.headers['x-forwarded-prefix'] ?? '-'}`));
              });
            },
            reject() {},
          },
        };
      },
    }),
  };
}

let upstream: Upstream;
const relays: Relay[] = [];
const servers: Server[] = [];

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await Promise.all(relays.map((relay) => relay.shutdown({ timeout: 0 })));
  await Promise.all(servers.map((server) => close(server)));
  await upstream.close();
});

async function relay(name: string, options: Partial<RelayOptions> = {}): Promise<Relay> {
  const made = createRelay({ targetBaseUrl: upstream.url, websocket: echoWebsocket(name), ...options });
  await made.startup();
  relays.push(made);
  return made;
}

/** An Express 5 app on a real server, `app.listen()` style. */
async function expressServer(setup: (app: express.Express) => void = () => {}): Promise<{ server: Server; url: string; port: number }> {
  const app = express();
  setup(app);
  app.get('/health', (_req, res) => res.send('app: healthy'));
  const server = createServer(app);
  servers.push(server);
  const url = await listen(server);
  return { server, url, port: Number(new URL(url).port) };
}

/** Opens a WebSocket, sends one message, resolves with the echo, closes. */
function echo(url: string, message: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`no echo from ${url}`));
    }, 5000);
    socket.on('open', () => socket.send(message));
    socket.on('message', (data) => {
      clearTimeout(timer);
      socket.close();
      resolve(String(data));
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** A raw handshake: everything read until the server closes the socket (`closed`), or the time runs out. */
function rawHandshake(port: number, path: string, timeoutMs = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, timeoutMs);
    socket.on('data', (chunk) => (text += chunk.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    socket.end();
  });
}

test('upgrades are routed by mount path, with the path after the mount; the longest mount wins', async () => {
  const { server, port } = await expressServer();
  routeUpgrades(server, {
    '/chat': await relay('chat', { upstreamPrefix: '/ws' }),
    '/chat/admin': await relay('admin'),
    '/feed': await relay('feed'),
  });
  const ws = `ws://127.0.0.1:${port}`;
  assert.is(await echo(`${ws}/chat/room?id=7`, 'hi'), 'chat /ws/room?id=7 hi /chat');
  assert.is(await echo(`${ws}/chat`, 'bare'), 'chat /ws bare /chat');
  assert.is(await echo(`${ws}/chat?token=x`, 'q'), 'chat /ws?token=x q /chat');
  assert.is(await echo(`${ws}/chat/admin/kick`, 'x'), 'admin /kick x /chat/admin');
  assert.is(await echo(`${ws}/feed/`, 'y'), 'feed / y /feed');
  assert.is(await echo(`${ws}/CHAT/room`, 'case'), 'chat /ws/room case /CHAT', 'case-insensitive, like Express mounts');
});

test('one server serves HTTP and WebSocket on the same mount path', async () => {
  const chat = await relay('chat');
  const { server, url, port } = await expressServer((app) => app.use('/chat', toConnect(chat)));
  routeUpgrades(server, { '/chat': chat });
  const history = await fetchRaw(`${url}/chat/history?since=1`);
  assert.is(history.status, 200);
  assert.is(JSON.parse(history.text).url, '/history?since=1');
  assert.is(await echo(`ws://127.0.0.1:${port}/chat/room`, 'hello'), 'chat /room hello /chat');
  assert.is((await fetchRaw(`${url}/health`)).text, 'app: healthy');
});

for (const framework of frameworks) {
  test(`${framework.name}: HTTP through the app and upgrades through routeUpgrades share the mount paths`, async () => {
    const chat = await relay('chat', { upstreamPrefix: '/v1' });
    const feed = await relay('feed');
    const app = await framework.start({ mounts: [['/chat', toConnect(chat)], ['/feed', toConnect(feed)]] });
    servers.push(app.server);
    routeUpgrades(app.server, { '/chat': chat, '/feed': feed });
    assert.is(JSON.parse((await fetchRaw(`${app.url}/chat/history`)).text).url, '/v1/history');
    assert.is(await echo(`ws://127.0.0.1:${app.port}/chat/room`, 'a'), 'chat /v1/room a /chat');
    assert.is(await echo(`ws://127.0.0.1:${app.port}/feed`, 'b'), 'feed / b /feed');
    assert.is((await fetchRaw(`${app.url}/health`)).text, 'app: healthy');
  });
}

test('an upgrade under no mount gets 404 and a closed socket when no other listener exists; /chatty is not /chat', async () => {
  const { server, port } = await expressServer();
  routeUpgrades(server, { '/chat': await relay('chat') });
  for (const path of ['/chatty', '/other/chat', '/']) {
    const answer = await rawHandshake(port, path);
    assert.match(answer.text, /^HTTP\/1.1 404 Not Found\r\n/, path);
    assert.match(answer.text, /connection: close/i);
    assert.match(answer.text, /ERR_NOT_MOUNTED/);
    assert.ok(answer.closed, `${path}: the socket is closed, not left hanging`);
  }
});

test("an upgrade under no mount is left to the server's other upgrade listeners", async () => {
  const { server, port } = await expressServer();
  const own = new WebSocketServer({ noServer: true });
  own.on('connection', (session) => session.on('message', (data) => session.send(`own ${String(data)}`)));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.url?.startsWith('/own')) own.handleUpgrade(req, socket, head, (session) => own.emit('connection', session, req));
  });
  routeUpgrades(server, { '/chat': await relay('chat') });
  assert.is(await echo(`ws://127.0.0.1:${port}/own`, 'mine'), 'own mine');
  assert.is(await echo(`ws://127.0.0.1:${port}/chat/x`, 'relayed'), 'chat /x relayed /chat');
  own.close();
});

test('calling routeUpgrades again replaces the routes without adding a listener; detach removes it', async () => {
  const { server, port } = await expressServer();
  const first = routeUpgrades(server, { '/chat': await relay('chat') });
  assert.is(server.listenerCount('upgrade'), 1);
  const second = routeUpgrades(server, { '/feed': await relay('feed'), '/': await relay('root') });
  assert.is(server.listenerCount('upgrade'), 1, 'no second listener');
  assert.equal(second.mountPaths, ['/feed', '']);
  assert.is(await echo(`ws://127.0.0.1:${port}/feed/x`, 'a'), 'feed /x a /feed');
  assert.is(await echo(`ws://127.0.0.1:${port}/chat/x`, 'b'), 'root /chat/x b -', 'the old /chat route is gone: the root mount takes it');
  first.detach();
  assert.is(server.listenerCount('upgrade'), 1, "a replaced handle's detach does nothing");
  second.detach();
  second.detach();
  assert.is(server.listenerCount('upgrade'), 0);
  const third = routeUpgrades(server, { '/chat': await relay('chat') });
  assert.is(server.listenerCount('upgrade'), 1);
  assert.is(await echo(`ws://127.0.0.1:${port}/chat`, 'c'), 'chat / c /chat');
  third.detach();
});

test("core's refusals reach the socket: traversal 400, a relay without websocket 501", async () => {
  const { server, port } = await expressServer();
  const plain = createRelay({ targetBaseUrl: upstream.url });
  await plain.startup();
  relays.push(plain);
  routeUpgrades(server, { '/chat': await relay('chat'), '/plain': plain });
  const traversal = await rawHandshake(port, '/chat/..%2fadmin');
  assert.match(traversal.text, /^HTTP\/1.1 400 /);
  assert.ok(traversal.closed);
  const unsupported = await rawHandshake(port, '/plain/x');
  assert.match(unsupported.text, /^HTTP\/1.1 501 /);
  assert.ok(unsupported.closed);
});

test('routeUpgrades checks its arguments when called', async () => {
  const chat = await relay('chat');
  const server = createServer();
  assert.throws(() => routeUpgrades({} as Server, { '/chat': chat }), (error: Error) => error instanceof TypeError && /server/.test(error.message));
  assert.throws(() => routeUpgrades(express() as unknown as Server, { '/chat': chat }), /http\.Server/);
  assert.throws(() => routeUpgrades(server, { chat }), (error: Error) => error instanceof TypeError && /routes\["chat"\]/.test(error.message));
  assert.throws(() => routeUpgrades(server, { '/a/../b': chat }), /routes\["\/a\/\.\.\/b"\]/);
  assert.throws(() => routeUpgrades(server, { '/chat': {} as Relay }), /routes\["\/chat"\] must be a relay/);
  assert.throws(() => routeUpgrades(server, { '/chat': chat, '/chat/': chat }), /repeats the mount path/);
  assert.is(server.listenerCount('upgrade'), 0, 'nothing installed by a failed call');
});

test.run();
