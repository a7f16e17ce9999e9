// A slow reader against the relay's timers (review s36): write progress towards a side is activity
// for `idleTimeout`, and a close frame queued behind data a side is still taking starts
// `closeTimeout` only once it is written. What stays bounded: a reader that stops altogether is cut
// (by the idle rule, or by closeTimeout windows when that rule is off), and nothing is left open.
//
// The relay sees a reader's progress only when its own queue moves: the kernel's socket buffers
// (megabytes on loopback) take data in bursts and hold the last of it out of sight, and node counts
// a queued write as a whole until all of it is written (a terminating session's message). So the
// slow phase here keeps many messages in the relay's queue, and idleTimeout is several bursts long.
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, nextPeer, noSocketsLeft, rawHandshake, startGateway, startWsUpstream } from './helpers.js';

const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts what `socket` receives; while `slow`, one read (at most 64 KiB) every 40 ms. */
function slowReader(socket: Socket): { received(): number; fullSpeed(): void; stop(): void } {
  let received = 0;
  let slow = true;
  socket.pause();
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (slow) socket.pause();
  });
  const timer = setInterval(() => socket.resume(), 40);
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
  test(`${mode}: a slow reader taking what the relay queued outlives two idle timeouts; once nothing moves, the idle rule still ends the session`, async () => {
    const idleTimeout = 3_000;
    const messages = 48;
    const messageSize = 512 * 1024;
    // Each with a 64-bit length header (10 bytes).
    const size = messages * (10 + messageSize);
    const upstream = await startWsUpstream({ onConnection: () => {} });
    // The relay reads all of it at once: from then on only its writes to the client move.
    const gateway = await startGateway({
      targetBaseUrl: upstream.url,
      websocket: websocket({ ...options, idleTimeout, closeTimeout: 500, highWaterMark: 64 * 1024 * 1024 }),
      logger: memoryLogger(),
    });
    const peerReady = nextPeer(upstream);
    const socket = await rawHandshake(gateway.port, '/slow');
    const reader = slowReader(socket);
    try {
      const peer = await peerReady;
      let peerEnd: { code: number; reason: string } | null = null;
      void closed(peer).then((end) => (peerEnd = end));
      for (let index = 0; index < messages; index++) peer.send(Buffer.alloc(messageSize, 1));
      // About 1.5 MiB/s: well under what was sent, so the relay's queue never empties in this phase.
      await sleep(2.5 * idleTimeout);
      assert.is(peerEnd, null, `closed after ${reader.received()} of ${size} bytes while the client was still reading`);
      assert.ok(reader.received() < size, 'the transfer was still in progress');
      reader.fullSpeed();
      assert.ok(await waitFor(() => reader.received() >= size, 30_000), `the client got ${reader.received()} of ${size} bytes`);
      assert.is(peerEnd, null);
      // Nothing moves either way from here: a silent session, closed by the idle rule.
      assert.ok(await waitFor(() => peerEnd !== null, 2 * idleTimeout + 10_000), 'the idle rule ended the session');
      assert.equal(peerEnd, { code: 1001, reason: 'idle timeout' });
    } finally {
      reader.stop();
      socket.destroy();
      assert.ok(await noSocketsLeft(gateway, upstream, 8_000));
      await gateway.close();
      await upstream.close();
    }
  });

  // A highWaterMark above the message: the relay reads the upstream's close frame and queues it
  // behind data the client never takes, whatever the kernel's buffers hold.
  for (const [idleTimeout, closeTimeout] of [
    [1_500, 300],
    [0, 500],
  ] as const) {
    const bound = idleTimeout > 0 ? idleTimeout : closeTimeout;
    test(`${mode}, idleTimeout ${idleTimeout}: a client that stops reading with the upstream's close queued behind data is cut within ${bound} ms windows, nothing left open`, async () => {
      const upstream = await startWsUpstream({ onConnection: () => {} });
      const gateway = await startGateway({
        targetBaseUrl: upstream.url,
        websocket: websocket({ ...options, idleTimeout, closeTimeout, highWaterMark: 64 * 1024 * 1024 }),
        logger: memoryLogger(),
      });
      const peerReady = nextPeer(upstream);
      const socket = await rawHandshake(gateway.port, '/stalled');
      socket.pause();
      try {
        const peer = await peerReady;
        peer.send(Buffer.alloc(16 * 1024 * 1024, 3));
        peer.close(1000, 'done');
        const started = Date.now();
        assert.ok(await waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, 2 * bound + closeTimeout + 10_000), 'both connections closed');
        const took = Date.now() - started;
        // Not closeTimeout from when the close frame was read: the client had not been sent it.
        assert.ok(took >= bound * 0.7, `cut after ${took} ms`);
      } finally {
        socket.destroy();
        await gateway.close();
        await upstream.close();
      }
    });
  }
}

test.run();
