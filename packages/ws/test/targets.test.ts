import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseTarget, type Stage, type Target } from '@relay/core';
import { websocket } from '../src/index.js';
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

test.run();
