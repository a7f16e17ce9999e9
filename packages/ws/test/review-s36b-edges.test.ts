// Review s36b: @relay/ws closing edges after the write-progress / deferred-close change (raw-session.ts,
// session.ts, owed-close.ts, handshake.ts): both sides closing at once, closes around the handshake (pipelined
// with the client's request, in the same write as the upstream's 101, a handshake the relay gives up on with a
// broken upstream), and a ping queued behind a big message. Both modes.
import { randomBytes } from 'node:crypto';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Stage } from '@relay/core';
import { listen, memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, nextPeer, noSocketsLeft, openClient, refusedHandshake, startGateway, startRawUpstream, startWsUpstream, switchingProtocols } from './helpers.js';

const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

/** `promise`'s value, or null after `ms` (the timer is cleared either way). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<null>((resolve) => (timer = setTimeout(resolve, ms, null)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A frame (RFC 6455 §5.2), masked when `masked` (client to server); payloads under 126 bytes. */
function frame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const header = Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([header, payload]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, mask, body]);
}

function closePayload(code: number, reason: string): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}

const handshakeHead = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

for (const [mode, options] of modes) {
  // RFC 6455 §5.5.1 / §7.1.3: both endpoints may send Close at once; each then has sent and received one and
  // closes the connection. Nothing should wait for closeTimeout.
  test(`${mode}: both sides close at once: each gets a valid close, both connections are gone well before closeTimeout`, async () => {
    const closeTimeout = 4_000;
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout }), logger: memoryLogger() });
    try {
      for (let round = 0; round < 5; round++) {
        const peerReady = nextPeer(upstream);
        const client = await openClient(`${gateway.url}/both/${round}`);
        const peer = await peerReady;
        const clientEnd = closed(client);
        const peerEnd = closed(peer);
        const started = Date.now();
        client.close(4001, 'client');
        peer.close(4002, 'upstream');
        const [fromClient, fromPeer] = await Promise.all([within(clientEnd, closeTimeout * 2), within(peerEnd, closeTimeout * 2)]);
        assert.ok(fromClient !== null && [4001, 4002].includes(fromClient.code), `client: ${JSON.stringify(fromClient)}`);
        assert.ok(fromPeer !== null && [4001, 4002].includes(fromPeer.code), `upstream: ${JSON.stringify(fromPeer)}`);
        assert.ok(await noSocketsLeft(gateway, upstream, closeTimeout * 2));
        const took = Date.now() - started;
        assert.ok(took < closeTimeout / 2, `round ${round}: ${took} ms to close both`);
      }
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });

  // A client that sends its close frame in the same write as its handshake (the relay gets it as `head`):
  // the upstream gets that close, the session ends cleanly.
  test(`${mode}: a close frame pipelined with the client's handshake reaches the upstream; nothing is left open`, async () => {
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout: 1_000 }), logger: memoryLogger() });
    const peerReady = nextPeer(upstream);
    const socket = connect(gateway.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.resume();
    try {
      socket.write(Buffer.concat([Buffer.from(handshakeHead('/pipelined')), frame(0x8, closePayload(4003, 'at once'), true)]));
      const peer = await peerReady;
      const end = await within(closed(peer), 5_000);
      assert.equal(end, { code: 4003, reason: 'at once' });
      socket.end();
      assert.ok(await noSocketsLeft(gateway, upstream, 5_000));
    } finally {
      socket.destroy();
      await gateway.close();
      await upstream.close();
    }
  });

  // An upstream whose close frame comes in the same write as its 101 (a server that refuses after accepting).
  test(`${mode}: an upstream close in the same write as its 101 reaches the client with its code; nothing is left open`, async () => {
    const upstream = await startRawUpstream((socket, key) => {
      socket.write(Buffer.concat([Buffer.from(switchingProtocols(key)), frame(0x8, closePayload(4004, 'go away'), false)]));
      socket.on('data', (chunk: Buffer) => {
        // The answer to the close (masked, opcode 8): the server closes its connection, as RFC 6455 §7.1.1 says.
        if ((chunk[0]! & 0x0f) === 0x8) socket.end();
      });
    });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout: 1_000 }), logger: memoryLogger() });
    try {
      const client = await openClient(`${gateway.url}/refuse-late`);
      const end = await within(closed(client), 5_000);
      assert.equal(end, { code: 4004, reason: 'go away' });
      assert.ok(await waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, 5_000));
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });

  // README "Where it goes": "a stage that … replaces the 101, refuses the client and the upstream connection is
  // closed with 1001"; README closeTimeout: a peer that never answers a close frame "is disconnected". Issue 6:
  // "Either side vanishing tears the other down; nothing leaks". A broken upstream that ignores the relay's close
  // and FIN and keeps streaming (a feed that pushes a tick every 50 ms) must still be dropped within closeTimeout.
  test(`${mode}: a handshake a stage refuses after the upstream's 101, with an upstream that ignores the close and keeps streaming: its connection is dropped within closeTimeout`, async () => {
    const closeTimeout = 500;
    // Half-open allowed: the relay's FIN does not end this side; it keeps writing until destroyed.
    const held = new Set<Socket>();
    const feed = createTcpServer({ allowHalfOpen: true }, (socket) => {
      held.add(socket);
      socket.on('close', () => held.delete(socket));
      socket.on('error', () => {});
      let head = '';
      socket.on('data', function onHead(chunk: Buffer) {
        head += chunk.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        socket.removeListener('data', onHead);
        socket.resume();
        socket.write(switchingProtocols(/sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? ''));
        const ticker = setInterval(() => {
          if (socket.destroyed) clearInterval(ticker);
          else socket.write(frame(0x1, Buffer.from('tick'), false));
        }, 50);
        socket.on('close', () => clearInterval(ticker));
      });
    });
    const upstream = { url: await listen(feed), sockets: held };
    const deny: Stage = {
      name: 'deny-after-101',
      wrap: (next) =>
        async function denyAfter101(request) {
          await next(request);
          return { status: 403, statusMessage: '', headers: { 'content-type': 'text/plain' }, body: Readable.from(['forbidden']) };
        },
    };
    const gateway = await startGateway({ targetBaseUrl: upstream.url, stages: [deny], websocket: websocket({ ...options, closeTimeout }), logger: memoryLogger() });
    try {
      const refusal = await refusedHandshake(`${gateway.url}/feed`);
      assert.is(refusal.status, 403);
      const refusedAt = Date.now();
      const gone = await waitFor(() => upstream.sockets.size === 0, closeTimeout + 4_000);
      assert.ok(gone, `the upstream connection is still open ${Date.now() - refusedAt} ms after the refusal (closeTimeout ${closeTimeout} ms)`);
    } finally {
      await gateway.close();
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => feed.close(() => resolve()));
    }
  });

  // Control frames share the byte stream (transparent) or the link's send queue (terminating) with data: a ping sent
  // after a big message reaches a client that was not reading once it reads again, after the message, and its pong
  // gets back to the upstream (docs: "pings and pongs pass through … the peers' keep-alive checks see each other").
  test(`${mode}: a ping queued behind an 8 MiB message reaches the client after it once the client reads again, and the pong returns`, async () => {
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, idleTimeout: 30_000 }), logger: memoryLogger() });
    const peerReady = nextPeer(upstream);
    const client = await openClient(`${gateway.url}/ping-behind`);
    try {
      const peer = await peerReady;
      const seen: string[] = [];
      client.on('message', (data: Buffer) => seen.push(`message ${data.length}`));
      client.on('ping', (data: Buffer) => seen.push(`ping ${String(data)}`));
      const pong = new Promise<string>((resolve) => peer.once('pong', (data: Buffer) => resolve(String(data))));
      client.pause();
      peer.send(Buffer.alloc(8 * 1024 * 1024, 4));
      peer.ping('p1');
      await new Promise((resolve) => setTimeout(resolve, 500));
      client.resume();
      assert.is(await within(pong, 10_000), 'p1');
      assert.equal(seen, [`message ${8 * 1024 * 1024}`, 'ping p1']);
      client.close(1000);
      await closed(client);
      assert.ok(await noSocketsLeft(gateway, upstream));
    } finally {
      client.terminate();
      await gateway.close();
      await upstream.close();
    }
  });
}

test.run();
