import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, httpTransport, type Relay, type Transport, type UpgradeTransport } from '@relay/core';
import { close, fetchRaw, listen, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { relayLifecycle, routeUpgrades, toConnect } from '../src/index.js';

// Lifecycle wiring: every mounted relay started before listening, shut down on close.

let upstream: Upstream;
const releases: Array<() => void> = [];

test.before(async () => {
  upstream = await startUpstream((req, res) => {
    if (req.url === '/slow') {
      setTimeout(() => res.end('slow done'), 300);
      return;
    }
    if (req.url === '/forever') {
      releases.push(() => res.end());
      return;
    }
    res.end(`upstream ${req.url}`);
  });
});

test.after(async () => {
  for (const release of releases) release();
  await upstream.close();
});

function app(mounts: Record<string, Relay>): express.Express {
  const made = express();
  for (const [path, relay] of Object.entries(mounts)) made.use(path, toConnect(relay));
  made.get('/health', (_req, res) => res.send('app: healthy'));
  return made;
}

test('startup() starts every relay before listening; a relay listed twice is started once', async () => {
  const auth = createRelay({ targetBaseUrl: upstream.url });
  const api = createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/v2' });
  const relays = relayLifecycle({ '/auth': auth, '/api': api, '/api-alias': api });
  assert.is(relays.relays.length, 2);
  const server = createServer(app({ '/auth': auth, '/api': api }));
  const url = await listen(server);
  assert.equal([auth.state, api.state], ['stopped', 'stopped']);
  await relays.startup();
  assert.equal([auth.state, api.state], ['running', 'running']);
  assert.is((await fetchRaw(`${url}/auth/login`)).text, 'upstream /login');
  assert.is((await fetchRaw(`${url}/api/users`)).text, 'upstream /v2/users');
  await relays.close(server);
  assert.equal([auth.state, api.state], ['stopped', 'stopped']);
  assert.is(server.listening, false);
});

test('when one relay fails to start, the others are stopped again and the error is thrown', async () => {
  const failing: Transport = {
    kind: 'http',
    name: 'failing',
    bind: () => ({
      handle: () => Promise.reject(new Error('unused')),
      startup: () => Promise.reject(new Error('no upstream pool today')),
      shutdown() {},
    }),
  };
  const good = createRelay({ targetBaseUrl: upstream.url });
  const bad = createRelay({ targetBaseUrl: upstream.url, transport: failing });
  const relays = relayLifecycle([good, bad]);
  await relays.startup().then(
    () => assert.unreachable('startup should fail'),
    (error: Error) => assert.is(error.message, 'no upstream pool today'),
  );
  assert.equal([good.state, bad.state], ['stopped', 'stopped']);
});

test('close(server) lets in-flight requests finish, refuses new connections and stops the relays', async () => {
  const auth = createRelay({ targetBaseUrl: upstream.url });
  const relays = relayLifecycle([auth]);
  await relays.startup();
  const server = createServer(app({ '/auth': auth }));
  const url = await listen(server);
  const inFlight = fetchRaw(`${url}/auth/slow`);
  assert.ok(await waitFor(() => auth.inFlight === 1), 'the slow request is in flight');
  const closing = relays.close(server, { timeout: 5000 });
  const slow = await inFlight;
  assert.equal([slow.status, slow.text], [200, 'slow done']);
  await closing;
  assert.is(auth.state, 'stopped');
  await fetchRaw(`${url}/health`).then(
    () => assert.unreachable('the server no longer accepts connections'),
    (error: NodeJS.ErrnoException) => assert.is(error.code, 'ECONNREFUSED'),
  );
  await relays.shutdown();
  await relays.close(server);
});

test('close(server) cuts what is still running at the deadline', async () => {
  const auth = createRelay({ targetBaseUrl: upstream.url, transport: httpTransport() });
  const relays = relayLifecycle([auth]);
  await relays.startup();
  const gateway = app({ '/auth': auth });
  let ownStarted = false;
  gateway.get('/own-forever', () => {
    ownStarted = true; // an app route that never answers
  });
  const server = createServer(gateway);
  const url = await listen(server);
  const relayed = fetchRaw(`${url}/auth/forever`);
  const own = fetchRaw(`${url}/own-forever`).catch((error: NodeJS.ErrnoException) => error.code);
  assert.ok(await waitFor(() => auth.inFlight === 1 && ownStarted));
  const started = Date.now();
  await relays.close(server, { timeout: 200 });
  assert.ok(Date.now() - started < 5000, 'close resolved soon after its deadline');
  const answer = await relayed;
  assert.is(answer.status, 503, 'the relay answered its waiting client at the deadline');
  assert.match(answer.text, /ERR_SHUTTING_DOWN/);
  assert.is(await own, 'ECONNRESET', "the app's own stuck request was cut");
  assert.is(auth.state, 'stopped');
});

test('close(server) closes relayed WebSockets with 1001, so the server can close', async () => {
  const sessions = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true });
  const websocket: UpgradeTransport = {
    kind: 'upgrade',
    name: 'echo-ws',
    bind: () => ({
      startup() {},
      shutdown() {
        for (const session of sessions) session.close(1001, 'going away');
      },
      async handle() {
        return {
          status: 101,
          statusMessage: '',
          headers: {},
          body: null,
          upgrade: {
            accept: (incoming: IncomingMessage, socket: Duplex, head: Buffer) =>
              wss.handleUpgrade(incoming, socket, head, (session) => {
                sessions.add(session);
                session.on('close', () => sessions.delete(session));
              }),
            reject() {},
          },
        };
      },
    }),
  };
  const chat = createRelay({ targetBaseUrl: upstream.url, websocket });
  const relays = relayLifecycle([chat]);
  await relays.startup();
  const server: Server = createServer(app({ '/chat': chat }));
  routeUpgrades(server, { '/chat': chat });
  const url = await listen(server);
  const client = new WebSocket(`${url.replace('http', 'ws')}/chat/room`);
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  const closedWith = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
  await relays.close(server, { timeout: 5000 });
  assert.is(await closedWith, 1001);
  assert.is(server.listening, false);
  await close(server);
});

test('relayLifecycle and close check their arguments', async () => {
  assert.throws(() => relayLifecycle(null as never), (error: Error) => error instanceof TypeError && /relays/.test(error.message));
  assert.throws(() => relayLifecycle([{} as Relay]), (error: Error) => error instanceof TypeError && /relays\[0\]/.test(error.message));
  const relays = relayLifecycle([]);
  const server = createServer();
  await relays.close(server, { timeout: -1 }).then(
    () => assert.unreachable('a negative timeout is refused'),
    (error: Error) => assert.ok(error instanceof RangeError && /timeout/.test(error.message)),
  );
});

test.run();
