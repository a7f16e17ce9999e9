// Review s36b: the write-progress rule (write-progress.ts `handleBacklog`, used by RawSession.onIdleCheck,
// Session.onIdleCheck, Pipe.closeWait and OwedClose) when the client's connection is TLS: a relay served by an
// https.Server (wss:// clients, as a gateway's TLS listener serves them). The same slow reader as
// slow-reader.test.ts, over TLS, in both modes.
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { listen, memoryLogger, tlsFixture, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, nextPeer, rawHandshake, startWsUpstream } from './helpers.js';

const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));


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
    const socket = await rawHandshake(port, '/slow-tls', { tls: true, paused: true });
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
