// Review s36b: the write-progress rule (write-progress.ts `handleBacklog`, used by RawSession.onIdleCheck,
// Session.onIdleCheck, Pipe.closeWait and OwedClose) when the client's connection is TLS: a relay served by an
// https.Server (wss:// clients, as a gateway's TLS listener serves them). The same slow reader as
// slow-reader.test.ts, over TLS, in both modes.
import { randomBytes } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { listen, memoryLogger, tlsFixture, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, nextPeer, startWsUpstream } from './helpers.js';

const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A wss:// client on a raw TLS socket: resolves after the 101, with the socket paused. */
function tlsHandshake(port: number, path: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    socket.on('error', reject);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    let head = '';
    socket.on('data', function onHead(chunk: Buffer) {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeListener('data', onHead);
      socket.removeListener('error', reject);
      socket.on('error', () => {});
      socket.pause();
      if (head.startsWith('HTTP/1.1 101')) resolve(socket);
      else reject(new Error(head.split('\r\n')[0]));
    });
  });
}

/** Counts what `socket` receives; while slow, about 64 KiB every 40 ms (about 1.5 MiB/s, as slow-reader.test.ts). */
function slowReader(socket: Socket): { received(): number; fullSpeed(): void; stop(): void } {
  let received = 0;
  let slot = 0;
  let slow = true;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    slot += chunk.length;
    if (slow && slot >= 64 * 1024) socket.pause();
  });
  const timer = setInterval(() => {
    slot = 0;
    socket.resume();
  }, 40);
  return {
    received: () => received,
    fullSpeed() {
      slow = false;
      clearInterval(timer);
      socket.resume();
    },
    stop: () => clearInterval(timer),
  };
}

for (const [mode, options] of modes) {
  // README "Timers and slow readers": "Writing to a side that is reading counts as activity for idleTimeout, as
  // nginx's send_timeout re-arms on each write that makes progress" (nginx does so over TLS as over TCP). Over TLS
  // node's socket handle is the TLS wrap, whose writeQueueSize only drops when a whole write is out: the progress
  // is on the TCP handle under it (`_handle._parent.writeQueueSize`).
  test(`${mode}, TLS client: a slow reader taking what the relay queued outlives two idle timeouts`, async () => {
    const idleTimeout = 4_000;
    const messages = 48;
    const messageSize = 512 * 1024;
    const size = messages * (10 + messageSize);
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const relay = createRelay({
      targetBaseUrl: upstream.url,
      websocket: websocket({ ...options, idleTimeout, closeTimeout: 500, highWaterMark: 64 * 1024 * 1024 }),
      logger: memoryLogger(),
    });
    await relay.startup();
    const server = createHttpsServer(tlsFixture, relay.handle);
    server.on('upgrade', relay.upgrade);
    const port = Number(new URL(await listen(server)).port);
    const peerReady = nextPeer(upstream);
    const socket = await tlsHandshake(port, '/slow-tls');
    const reader = slowReader(socket);
    try {
      const peer = await peerReady;
      let peerEnd: { code: number; reason: string } | null = null;
      void closed(peer).then((end) => (peerEnd = end));
      for (let index = 0; index < messages; index++) peer.send(Buffer.alloc(messageSize, 1));
      await sleep(2.5 * idleTimeout);
      assert.is(peerEnd, null, `closed after ${reader.received()} of ${size} bytes while the client was still reading`);
      assert.ok(reader.received() < size, 'the transfer was still in progress');
      reader.fullSpeed();
      assert.ok(await waitFor(() => reader.received() >= size, 30_000), `the client got ${reader.received()} of ${size} bytes`);
    } finally {
      reader.stop();
      socket.destroy();
      await relay.shutdown({ timeout: 1000 });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await upstream.close();
    }
  });
}

test.run();
