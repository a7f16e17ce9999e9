// Issue 13 item 6: pings and pongs count against the same bound as messages. A client that floods
// pings towards an upstream that stopped reading is paused once `highWaterMark` is queued, so the
// relay's memory stays bounded (before: +293 MiB in 8 s). The paused session then ends by the idle
// rule, since nothing moves either way.
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { nextPeer, rawHandshake, startGateway, startWsUpstream } from './helpers.js';

/** One masked control frame (opcode 0x9 ping, 0xA pong) with a 125-byte payload: the largest a control frame may carry. */
function controlFrame(opcode: 0x9 | 0xa): Buffer {
  const payload = randomBytes(125);
  const mask = randomBytes(4);
  const frame = Buffer.alloc(2 + 4 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  mask.copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ mask[i % 4]!;
  return frame;
}


/** Writes `total` bytes of `frames` honouring backpressure; stops early when a write has not drained in `stallMs`. */
async function flood(socket: Socket, frames: Buffer, total: number, stallMs: number): Promise<{ written: number; stalled: boolean }> {
  let written = 0;
  while (written < total) {
    written += frames.length;
    if (socket.write(frames)) continue;
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        socket.removeListener('drain', onDrain);
        resolve(false);
      }, stallMs);
      function onDrain(): void {
        clearTimeout(timer);
        resolve(true);
      }
      socket.once('drain', onDrain);
    });
    if (!drained) return { written, stalled: true };
  }
  return { written, stalled: false };
}

/** Both session modes: transparent (the default) and terminating (a pass-through message hook). */
const modes = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
] as const;

for (const [mode, policy] of modes) {
  for (const [kind, opcode] of [['ping', 0x9], ['pong', 0xa]] as const) {
    test(`${mode}: a ${kind} flood towards an upstream that stopped reading is paused at the high-water mark: bounded memory`, async () => {
      // The upstream accepts, then never reads again.
      const upstream = await startWsUpstream({ onConnection: (ws) => ws.pause() });
      const logger = memoryLogger();
      const idleTimeout = 2_000;
      const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ idleTimeout, closeTimeout: 1_000, ...policy }), logger });
      const peerReady = nextPeer(upstream);
      const client = await rawHandshake(gateway.port, '/flood');
      client.on('error', () => {});
      await peerReady;
      const frame = controlFrame(opcode);
      const frames = Buffer.concat(Array.from({ length: 512 }, () => frame)); // 64 KiB of frames per write
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      const total = 96 * 1024 * 1024;
      const result = await flood(client, frames, total, 1_000);
      const [relaySide] = gateway.sockets;
      const accepted = relaySide?.bytesRead ?? 0;
      const growth = process.memoryUsage().rss - rssBefore;
      const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
      assert.ok(result.stalled, `the relay stopped reading the flood (it read ${mib(accepted)} of ${mib(result.written)} written)`);
      assert.ok(accepted < 32 * 1024 * 1024, `the relay read at most tens of MiB of ${kind}s: ${mib(accepted)}`);
      assert.ok(growth < 64 * 1024 * 1024, `gateway memory grew by ${mib(growth)}`);
      // The documented rule for a stalled session: paused, then closed once idleTimeout passes with nothing relayed.
      assert.ok(await waitFor(() => gateway.sockets.size === 0, idleTimeout + 15_000), 'the paused session was closed by the idle rule');
      const idleLine = () => logger.lines.some((line) => line.message === 'websocket session closed: idle timeout');
      assert.ok(await waitFor(idleLine, 10_000), 'logged as an idle timeout');
      client.destroy();
      await gateway.close();
      await upstream.close();
    });
  }
}

test.run();
