import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseTarget, type Stage, type Target } from '@relay/core';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { inbox, openClient, startGateway, startWsUpstream } from './helpers.js';

// Issue 17: a handshake goes to the target a stage chose (a balancer, a router), in both modes.

function toOther(other: Target): Stage {
  return {
    name: 'to-other',
    wrap: (next) =>
      function toOther(request) {
        return next(request.path.startsWith('/b') ? { ...request, target: other } : request);
      },
  };
}

for (const [mode, options] of [['transparent', {}], ['terminating', { maxPayload: 1024 * 1024 }]] as const) {
  test(`${mode}: a handshake goes to the target a stage chose, with that target's Host`, async () => {
    const a = await startWsUpstream();
    const b = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: a.url, stages: [toOther(parseTarget(b.url))], websocket: websocket(options) });
    for (const path of ['/a', '/b']) {
      const client = await openClient(`${gateway.url}${path}`);
      const messages = inbox(client);
      client.send(`hello ${path}`);
      assert.is((await messages.next()).data.toString(), `hello ${path}`);
      client.close();
    }
    assert.equal(a.handshakes.map((h) => h.url), ['/a']);
    assert.equal(b.handshakes.map((h) => h.url), ['/b']);
    assert.is(b.handshakes[0]!.headers.host, new URL(b.url).host);
    await gateway.close();
    await a.close();
    await b.close();
  });
}

test('transparent: a unix: target serves WebSocket sessions (and the relay-wide unix: target too)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'relay-ws-unix-'));
  const socketPath = join(dir, 'chat.sock');
  const server = createServer((_req, res) => res.end('http over the socket'));
  const wss = new WebSocketServer({ server });
  const hosts: string[] = [];
  wss.on('connection', (ws, req) => {
    hosts.push(req.headers.host ?? '');
    ws.on('message', (data) => ws.send(`unix: ${data.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const gateway = await startGateway({ targetBaseUrl: `unix:${socketPath}`, websocket: websocket() });
  const client = await openClient(`${gateway.url}/room`);
  const messages = inbox(client);
  client.send('hi');
  assert.is((await messages.next()).data.toString(), 'unix: hi');
  client.close();
  const http = await fetch(gateway.url.replace('ws:', 'http:') + '/page');
  assert.is(await http.text(), 'http over the socket');
  assert.equal(hosts, ['localhost']);
  await gateway.close();
  wss.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

/** A `ws` echo server on a unix socket in a fresh tmp dir: its Host headers, open connections, and a close that removes the dir. */
async function startUnixWs(answerAfterMs = 0): Promise<{ socketPath: string; server: Server; hosts: string[]; paths: string[]; connections(): Promise<number>; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'relay-ws-unix-'));
  // A `:` in the name: `ws`'s own `ws+unix:` addresses would split the path there.
  const socketPath = join(dir, 'chat:1.sock');
  const server = createServer((_req, res) => res.end('http over the socket'));
  // `answerAfterMs`: the 101 comes that long after the handshake request (a slow upstream).
  const wss = new WebSocketServer({ server, verifyClient: (_info, accept) => void setTimeout(accept, answerAfterMs, true) });
  const hosts: string[] = [];
  const paths: string[] = [];
  wss.on('connection', (ws, req) => {
    hosts.push(req.headers.host ?? '');
    paths.push(req.url ?? '');
    ws.on('message', (data) => ws.send(`unix: ${data.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    server,
    hosts,
    paths,
    connections: () => new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count)))),
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls the server's open connections until none is left (true) or 5 s pass (false). */
async function noConnections(upstream: { connections(): Promise<number> }): Promise<boolean> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if ((await upstream.connections()) === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}

// Terminating mode: a message hook (or a limit) makes the relay a ws client of its own, and that
// client must also connect over the socket, not to TCP localhost:80.
const seen: string[] = [];
const terminating: WebSocketOptions = { onClientMessage: (message) => void seen.push(message.data.toString()) };

test('terminating: a relay-wide unix: target serves WebSocket sessions through the message hook', async () => {
  const upstream = await startUnixWs();
  seen.length = 0;
  const gateway = await startGateway({ targetBaseUrl: `unix:${upstream.socketPath}`, websocket: websocket(terminating) });
  const client = await openClient(`${gateway.url}/room?x=1`);
  const messages = inbox(client);
  client.send('hi');
  assert.is((await messages.next()).data.toString(), 'unix: hi');
  assert.equal(seen, ['hi'], 'the hook saw the message: the relay terminated the session');
  assert.equal(upstream.hosts, ['localhost']);
  assert.equal(upstream.paths, ['/room?x=1']);
  client.close();
  await gateway.close();
  await upstream.close();
});

for (const [mode, options] of [['transparent', {}], ['terminating', terminating]] as const) {
  test(`${mode}: a unix: target a stage chose (the relay's own target is TCP)`, async () => {
    const tcp = await startWsUpstream();
    const upstream = await startUnixWs();
    const gateway = await startGateway({ targetBaseUrl: tcp.url, stages: [toOther(parseTarget(`unix:${upstream.socketPath}`))], websocket: websocket(options) });
    for (const path of ['/a', '/b']) {
      const client = await openClient(`${gateway.url}${path}`);
      const messages = inbox(client);
      client.send(path);
      assert.is((await messages.next()).data.toString(), path === '/b' ? 'unix: /b' : '/a');
      client.close();
    }
    assert.equal(tcp.handshakes.map((h) => h.url), ['/a']);
    assert.equal(upstream.paths, ['/b']);
    assert.equal(upstream.hosts, ['localhost']);
    await gateway.close();
    await tcp.close();
    await upstream.close();
  });
}

for (const [mode, options] of [['transparent', {}], ['terminating', terminating]] as const) {
  test(`${mode}: an https relay, a unix: target chosen by a stage: the connect timeout ends at the socket's connect, not at the 101`, async () => {
    // The 101 comes after the connect timeout: waiting for a TLS handshake on a plain socket would time out.
    const upstream = await startUnixWs(600);
    const gateway = await startGateway({
      targetBaseUrl: 'https://127.0.0.1:1',
      timeout: { connect: 200 },
      stages: [toOther(parseTarget(`unix:${upstream.socketPath}`))],
      websocket: websocket(options),
    });
    const client = await openClient(`${gateway.url}/b`);
    const messages = inbox(client);
    client.send('slow');
    assert.is((await messages.next()).data.toString(), 'unix: slow');
    client.close();
    await gateway.close();
    await upstream.close();
  });

  test(`${mode}: a unix: session ends on both sides: the relay closes its socket connection; at shutdown too`, async () => {
    const upstream = await startUnixWs();
    const gateway = await startGateway({ targetBaseUrl: `unix:${upstream.socketPath}`, websocket: websocket(options) });
    const client = await openClient(`${gateway.url}/room`);
    const messages = inbox(client);
    client.send('one');
    await messages.next();
    assert.is(await upstream.connections(), 1);
    const closed = new Promise<number>((resolve) => client.once('close', resolve));
    client.close(1000, 'bye');
    assert.is(await closed, 1000);
    assert.ok(await noConnections(upstream), 'the upstream socket connection is closed');
    // A session still open at shutdown is closed with 1001 and its socket connection ends too.
    const second = await openClient(`${gateway.url}/room`);
    const goingAway = new Promise<number>((resolve) => second.once('close', resolve));
    inbox(second);
    second.send('two');
    await gateway.close();
    assert.is(await goingAway, 1001);
    assert.ok(await noConnections(upstream), 'closed at shutdown');
    await upstream.close();
    assert.not.ok(existsSync(upstream.socketPath), 'the socket file and its dir are gone');
  });
}

test.run();
