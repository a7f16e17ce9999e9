// Issue 13 item 1: an upstream that refuses a WebSocket handshake with an ordinary keep-alive
// response (401, 301 with Content-Length, no `Connection: close`) must not leave its connection
// open behind the relay, and a later reset of that connection must not crash the gateway.
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, memoryLogger, waitFor } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { refusedHandshake, startGateway } from './helpers.js';

const openFds = () => readdirSync('/proc/self/fd').length;

/** An HTTP server that answers every handshake with a keep-alive refusal; it never closes a connection itself. */
async function startRefusingUpstream(): Promise<{ url: string; server: Server; sockets: Set<Socket> }> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/moved')) res.writeHead(301, { location: '/elsewhere', 'content-length': '5' });
    else res.writeHead(401, { 'www-authenticate': 'Bearer', 'content-length': '5' });
    res.end('nope!');
  });
  // Keep-alive for as long as the test runs: only the relay may close these connections.
  server.keepAliveTimeout = 0;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return { url: await listen(server), server, sockets };
}

/** Both session modes: transparent (the default) and terminating (a pass-through message hook). */
const modes = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
] as const;

for (const [mode, policy] of modes) {
  test(`${mode}: 1 000 keep-alive refusals leave no upstream connection open, the fd count back at baseline, and resets crash nothing`, async () => {
    const upstream = await startRefusingUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(policy), logger: memoryLogger() });
    const first = await refusedHandshake(`${gateway.url}/warm-up`);
    assert.is(first.status, 401);
    assert.ok(await waitFor(() => upstream.sockets.size === 0 && gateway.sockets.size === 0, 5_000), `the warm-up connections are closed (${upstream.sockets.size}, ${gateway.sockets.size})`);
    const baseline = openFds();
    const total = 1_000;
    const concurrency = 20;
    let started = 0;
    const statuses = new Map<number, number>();
    async function worker(): Promise<void> {
      while (started < total) {
        const path = started++ % 2 === 0 ? '/moved' : '/private';
        const refusal = await refusedHandshake(`${gateway.url}${path}`);
        statuses.set(refusal.status, (statuses.get(refusal.status) ?? 0) + 1);
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    assert.equal(Object.fromEntries(statuses), { 301: 500, 401: 500 }, 'each client got the upstream’s refusal');
    // A reset of whatever the relay left open (nothing, once fixed) must not crash the process.
    for (const socket of upstream.sockets) socket.resetAndDestroy();
    assert.ok(await waitFor(() => upstream.sockets.size === 0, 10_000), `upstream connections left open: ${upstream.sockets.size}`);
    assert.ok(await waitFor(() => gateway.sockets.size === 0, 10_000), 'client connections closed');
    assert.ok(await waitFor(() => openFds() <= baseline, 10_000), `fd count back at baseline (${baseline}, now ${openFds()})`);
    const after = await refusedHandshake(`${gateway.url}/private`);
    assert.is(after.status, 401, 'the relay keeps serving');
    await gateway.close();
    await close(upstream.server);
  });

  test(`${mode}: an upstream reset of a refused handshake’s idle connection does not crash the gateway`, async () => {
    const upstream = await startRefusingUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(policy), logger: memoryLogger() });
    const held = new Set<Socket>();
    upstream.server.on('connection', (socket: Socket) => held.add(socket));
    const refusal = await refusedHandshake(`${gateway.url}/private`);
    assert.is(refusal.status, 401);
    assert.is(refusal.body, 'nope!');
    // Reset at once, before the relay had a chance to close it: the relay's side must own the error.
    for (const socket of held) if (!socket.destroyed) socket.resetAndDestroy();
    assert.ok(await waitFor(() => upstream.sockets.size === 0, 5_000));
    const again = await refusedHandshake(`${gateway.url}/private`);
    assert.is(again.status, 401, 'the process is alive and serving');
    await gateway.close();
    await close(upstream.server);
  });
}

test.run();
