// Review s36b: @relay/ws after the write-progress / deferred-close change (write-progress.ts, owed-close.ts,
// raw-session.ts, session.ts): many sessions whose readers stall and are then released (every queued byte and the
// upstream's close arrive, no socket and no timer left behind), and the terminating mode's per-send callbacks over
// 100 000 small messages (heap stays bounded). Both modes.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WebSocket } from 'ws';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`'s value, or null after `ms` (the timer is cleared either way). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<null>((resolve) => (timer = setTimeout(resolve, ms, null)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Timers alive in this process now (the relay's idle, close and stall timers among them). */
function timers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

for (const [mode, options] of modes) {
  // Issue 6: "200 concurrent sessions opened and closed with no socket left behind"; the commit: "Every timer is
  // cleared in finish/onClose". Here each client stops reading while its upstream sends 512 KiB and closes (the close
  // waits behind the data, the relay's queue is full, the upstream is paused), then reads again, well within
  // closeTimeout (the kernel's buffers may take the close frame, which then starts closeTimeout: docs/websocket.md).
  test(`${mode}: 200 sessions whose readers stall behind 512 KiB and the upstream's close, then read again: every byte and 1000 arrive, no socket or timer left`, async () => {
    const sessions = 200;
    const perSession = 4;
    const size = 128 * 1024;
    const baseline = timers();
    const upstream = await startWsUpstream({
      onConnection: (ws) => {
        const data = Buffer.alloc(size, 5);
        // Sent once the client has stopped reading.
        ws.once('message', () => {
          for (let index = 0; index < perSession; index++) ws.send(data);
          ws.close(1000, 'done');
        });
      },
    });
    const gateway = await startGateway({
      targetBaseUrl: upstream.url,
      websocket: websocket({ ...options, idleTimeout: 20_000, closeTimeout: 5_000, highWaterMark: 64 * 1024 }),
      logger: memoryLogger(),
    });
    const clients: WebSocket[] = [];
    try {
      const received = new Array<number>(sessions).fill(0);
      const ends: Array<Promise<{ code: number; reason: string }>> = [];
      for (let index = 0; index < sessions; index++) {
        const client = await openClient(`${gateway.url}/many/${index}`);
        clients.push(client);
        client.on('message', (data: Buffer) => (received[index]! += data.length));
        ends.push(closed(client));
        client.pause();
      }
      for (const client of clients) client.send('go');
      // Everything stalled: the relay's queues are full and every upstream is paused behind its close.
      await sleep(1_500);
      // (A terminating relay may have read all of it and answered the upstream's close already: only the clients count.)
      assert.is(gateway.sockets.size, sessions, 'a stalled client was dropped');
      for (const client of clients) client.resume();
      const results = await within(Promise.all(ends), 30_000);
      assert.ok(results !== null, `not every session ended: ${received.filter((bytes) => bytes === perSession * size).length} complete`);
      const wrong = results.map((end, index) => ({ index, end, bytes: received[index] })).filter(({ end, bytes }) => end.code !== 1000 || end.reason !== 'done' || bytes !== perSession * size);
      assert.equal(wrong.slice(0, 3), [], `${wrong.length} sessions lost data or their close`);
      assert.ok(await noSocketsLeft(gateway, upstream, 10_000), `left open: ${gateway.sockets.size} client, ${upstream.sockets.size} upstream`);
      // The relay's idle, close and stall timers are all cleared once the sessions ended.
      assert.ok(await waitFor(() => timers() <= baseline + 2, 3_000), `${timers() - baseline} timers left beyond the baseline`);
    } finally {
      for (const client of clients) client.terminate();
      await gateway.close();
      await upstream.close();
    }
  });

  // The hot path keeps nothing per message: the terminating mode's send callbacks are made once per session
  // (session.ts), the transparent pipe writes chunks. 100 000 small messages echoed through one session.
  test(`${mode}: 100 000 small messages echoed through one session: heapUsed after GC stays bounded (no per-message retention)`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, idleTimeout: 60_000 }), logger: memoryLogger() });
    const client = await openClient(`${gateway.url}/heap`);
    try {
      let echoed = 0;
      client.on('message', () => echoed++);
      const payload = Buffer.alloc(48, 9);
      const batch = 1_000;
      const heapAt: number[] = [];
      for (let round = 1; round <= 100; round++) {
        for (let index = 0; index < batch; index++) client.send(payload, { binary: true });
        assert.ok(await waitFor(() => echoed === round * batch, 10_000), `round ${round}: ${echoed} echoed`);
        if (round === 10 || round === 100) {
          gc();
          await sleep(20);
          gc();
          heapAt.push(process.memoryUsage().heapUsed);
        }
      }
      const growth = heapAt[1]! - heapAt[0]!;
      // 90 000 messages between the two samples: 90 bytes each would already be 8 MB.
      assert.ok(growth < 8 * 1024 * 1024, `heapUsed grew by ${(growth / 1024 / 1024).toFixed(1)} MiB over 90 000 messages`);
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
