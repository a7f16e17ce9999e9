// The WebSocket fault suite, at two sizes: `sessions` clients exchange messages through a relay
// while a tenth of the upstream sockets are killed (half closed abruptly, half reset).
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, gatewayServerOptions } from '@relay/core';
import { listen, waitFor } from '@relay/testkit';
import { websocket } from '@relay/ws';

interface Session {
  client: WebSocket;
  index: number;
  echoes: number;
  echoesAtKill: number;
  closeCode: number | null;
}

function trackSockets(server: Server | WebSocketServer): Set<Socket> {
  const sockets = new Set<Socket>();
  const http = server instanceof WebSocketServer ? null : server;
  const onConnection = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  if (http !== null) http.on('connection', onConnection);
  else server.on('connection', (ws: WebSocket & { _socket: Socket }) => onConnection(ws._socket));
  return sockets;
}

export async function websocketFaults(sessions: number): Promise<void> {
  const upstream = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => upstream.once('listening', resolve));
  const upstreamSockets = trackSockets(upstream);
  const peers: Array<WebSocket & { _socket: Socket }> = [];
  upstream.on('connection', (peer: WebSocket & { _socket: Socket }) => {
    peers.push(peer);
    peer.on('error', () => {});
    peer.on('message', (data, binary) => peer.send(data, { binary }));
  });
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`, websocket: websocket() });
  await relay.startup();
  const gateway = createServer({ ...gatewayServerOptions }, relay.handle);
  gateway.on('upgrade', relay.upgrade);
  const gatewaySockets = trackSockets(gateway);
  const base = (await listen(gateway)).replace('http:', 'ws:');

  const all: Session[] = [];
  for (let start = 0; start < sessions; start += 50) {
    const batch = Array.from({ length: Math.min(50, sessions - start) }, (_, offset) => {
      const session: Session = { client: new WebSocket(`${base}/room/${start + offset}`), index: start + offset, echoes: 0, echoesAtKill: 0, closeCode: null };
      session.client.on('message', () => session.echoes++);
      session.client.on('close', (code) => (session.closeCode = code));
      session.client.on('error', () => {});
      return new Promise<Session>((resolve, reject) => {
        session.client.once('open', () => resolve(session));
        session.client.once('error', reject);
      });
    });
    all.push(...(await Promise.all(batch)));
  }
  assert.ok(await waitFor(() => peers.length === sessions, 10_000), `${peers.length}/${sessions} upstream sessions`);

  const chatter = setInterval(() => {
    for (const session of all) if (session.client.readyState === WebSocket.OPEN) session.client.send(`ping ${session.index}`);
  }, 25);
  assert.ok(await waitFor(() => all.every((s) => s.echoes > 0), 10_000), 'every session exchanged messages');

  // Kill a tenth of the upstream sockets: every tenth peer, half abruptly closed, half reset.
  const killed = new Set<number>();
  peers.forEach((peer, index) => {
    if (index % 10 !== 0) return;
    killed.add(index);
    if (index % 20 === 0) peer._socket.destroy();
    else peer._socket.resetAndDestroy();
  });
  for (const session of all) session.echoesAtKill = session.echoes;

  const killedClients = () => all.filter((s) => s.closeCode !== null);
  assert.ok(await waitFor(() => killedClients().length >= killed.size, 10_000), `${killedClients().length} clients told of ${killed.size} killed upstreams`);
  const told = killedClients();
  assert.is(told.length, killed.size, 'exactly the killed sessions closed');
  assert.ok(told.every((s) => s.closeCode === 1011), `killed sessions got 1011: ${[...new Set(told.map((s) => s.closeCode))]}`);

  const alive = all.filter((s) => s.closeCode === null);
  assert.ok(await waitFor(() => alive.every((s) => s.echoes > s.echoesAtKill + 2), 10_000), 'the other sessions kept exchanging messages');
  clearInterval(chatter);

  for (const session of alive) session.client.close(1000, 'done');
  assert.ok(await waitFor(() => all.every((s) => s.closeCode !== null), 10_000), `${all.filter((s) => s.closeCode === null).length} clients hung`);
  assert.ok(alive.every((s) => s.closeCode === 1000), 'normal closes stay 1000');
  assert.ok(
    await waitFor(() => gatewaySockets.size === 0 && upstreamSockets.size === 0, 15_000),
    `sockets left: gateway ${gatewaySockets.size}, upstream ${upstreamSockets.size}`,
  );
  assert.is(relay.inFlight, 0);
  console.log(`${sessions} sessions, ${killed.size} upstream sockets killed: every killed client got 1011, the rest kept talking and closed 1000, no socket left`);

  await relay.shutdown();
  await new Promise((resolve) => gateway.close(resolve));
  await new Promise((resolve) => upstream.close(resolve));
}
