// Review s36b: @relay/ws after "count write progress towards a slow reader; start closeTimeout when
// the close frame is written" (write-progress.ts, owed-close.ts, raw-session.ts, session.ts; docs/websocket.md
// "Backpressure", "Timeouts and limits" and the README's "Timers and slow readers"). A hostile client and a broken
// upstream against the timers, in both modes: a client that never reads, one that trickles, a side that sends
// data after its close frame, and shutdown() with stalled readers. Raw TCP clients where `ws` would behave.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, nextPeer, noSocketsLeft, openClient, rawHandshake, startGateway, startRawUpstream, startWsUpstream, switchingProtocols } from './helpers.js';

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

/** A frame (RFC 6455 §5.2), masked when `masked` (client to server). */
function frame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const length = payload.length;
  let header: Buffer;
  if (length < 126) header = Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | length]);
  else if (length < 65536) header = Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | 126, length >> 8, length & 0xff]);
  else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = (masked ? 0x80 : 0) | 127;
    header.writeBigUInt64BE(BigInt(length), 2);
  }
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

/** Sends `count` messages of `size` bytes from the upstream peer (all queued at once on the upstream's side). */
function flood(peer: { send(data: Buffer): void }, count: number, size: number): void {
  const data = Buffer.alloc(size, 7);
  for (let index = 0; index < count; index++) peer.send(data);
}

for (const [mode, options] of modes) {
  // docs/websocket.md "Backpressure": "A side that stops reading altogether stops the traffic with it, and
  // idleTimeout then closes the session"; "one that takes none of the queued data for idleTimeout … is
  // disconnected". So a client that never reads a byte is gone by about two idle timeouts (+ closeTimeout).
  test(`${mode}: a client that never reads: the upstream gets 1001 "idle timeout", both connections are gone within 2 x idleTimeout + closeTimeout`, async () => {
    const idleTimeout = 1_500;
    const closeTimeout = 400;
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, idleTimeout, closeTimeout }), logger: memoryLogger() });
    const peerReady = nextPeer(upstream);
    const socket = await rawHandshake(gateway.port, '/never');
    socket.pause();
    try {
      const peer = await peerReady;
      const peerEnd = closed(peer);
      const started = Date.now();
      // 24 MiB: more than the relay's highWaterMark and every kernel buffer between them.
      flood(peer, 24, 1024 * 1024);
      const end = await within(peerEnd, 3 * idleTimeout + 5_000);
      assert.equal(end, { code: 1001, reason: 'idle timeout' });
      assert.ok(await waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, 2 * idleTimeout + closeTimeout + 6_000), 'both connections closed');
      const took = Date.now() - started;
      assert.ok(took < 2 * idleTimeout + closeTimeout + 6_000, `gone after ${took} ms`);
    } finally {
      socket.destroy();
      await gateway.close();
      await upstream.close();
    }
  });

  // The same hostile client, reading one byte every 100 ms (node reads the kernel in 64 KiB chunks, so
  // the relay sees one burst of progress and then nothing for hours): a trickle that small must not
  // defeat the idle rule (nginx: send_timeout counts between two successive write operations).
  test(`${mode}: a client that reads one byte at a time is cut like one that never reads (bounded by the idle rule)`, async () => {
    const idleTimeout = 1_500;
    const closeTimeout = 400;
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, idleTimeout, closeTimeout }), logger: memoryLogger() });
    const peerReady = nextPeer(upstream);
    const socket = await rawHandshake(gateway.port, '/trickle');
    socket.pause();
    socket.removeAllListeners('data');
    let read = 0;
    const trickle = setInterval(() => {
      if (socket.read(1) !== null) read++;
    }, 100);
    try {
      const peer = await peerReady;
      flood(peer, 24, 1024 * 1024);
      const started = Date.now();
      assert.ok(await waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, 3 * idleTimeout + closeTimeout + 8_000), `still open after ${Date.now() - started} ms (${read} bytes read)`);
    } finally {
      clearInterval(trickle);
      socket.destroy();
      await gateway.close();
      await upstream.close();
    }
  });

  // A reader that takes one read (at most 64 KiB) every 40 ms, about 1.5 MiB/s, makes write progress the relay can
  // see (docs: keep idleTimeout "well above the time your slowest reader needs for a few megabytes"): the session is
  // kept (docs: "A side that reads slowly is not stopped"; nginx re-arms send_timeout on each write that progresses),
  // and what the relay holds stays bounded: the upstream is paused, the rest of its data stays on its side.
  test(`${mode}: a trickle reader keeps its session past 3 idle timeouts and the relay holds back the upstream (what it took minus what was read stays bounded)`, async () => {
    const idleTimeout = 3_000;
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, idleTimeout, closeTimeout: 400 }), logger: memoryLogger() });
    const peerReady = nextPeer(upstream);
    const socket = await rawHandshake(gateway.port, '/trickle64k');
    socket.pause();
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      socket.pause();
    });
    const trickle = setInterval(() => socket.resume(), 40);
    try {
      const peer = await peerReady;
      let peerEnd: { code: number; reason: string } | null = null;
      void closed(peer).then((end) => (peerEnd = end));
      const total = 96 * 1024 * 1024;
      flood(peer, 96, 1024 * 1024);
      let worst = 0;
      const started = Date.now();
      while (Date.now() - started < 3 * idleTimeout + 500) {
        await sleep(250);
        worst = Math.max(worst, total - peer.bufferedAmount - received);
      }
      assert.is(peerEnd, null, `closed while the client was reading (${received} bytes read)`);
      assert.ok(received > 4 * 1024 * 1024, `${received} bytes read`);
      assert.ok(received < total, 'the transfer was still in progress');
      // In flight: highWaterMark (1 MiB) + one message + what the kernel buffers hold (a few MiB each way).
      assert.ok(worst < 16 * 1024 * 1024, `up to ${worst} bytes taken from the upstream and not yet read by the client`);
    } finally {
      clearInterval(trickle);
      socket.destroy();
      assert.ok(await noSocketsLeft(gateway, upstream, 8_000));
      await gateway.close();
      await upstream.close();
    }
  });

  // RFC 6455 §5.5.1: after its Close frame an endpoint sends no more data. A broken upstream that does (and never
  // closes its TCP connection) must not hold the session: the client answers the close, and closeTimeout after the
  // close frame reached it both connections are gone.
  test(`${mode}: an upstream that keeps sending data after its close frame: the client gets its code, the session is gone within closeTimeout`, async () => {
    const closeTimeout = 600;
    let streaming: NodeJS.Timeout | null = null;
    const upstream = await startRawUpstream((socket: Socket, key: string) => {
      socket.write(switchingProtocols(key));
      socket.write(frame(0x1, Buffer.from('hello'), false));
      socket.write(frame(0x8, closePayload(4000, 'bye'), false));
      streaming = setInterval(() => {
        if (!socket.destroyed) socket.write(frame(0x2, Buffer.alloc(1024, 1), false));
      }, 20);
      socket.resume();
    });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, idleTimeout: 60_000, closeTimeout }), logger: memoryLogger() });
    try {
      const client = await openClient(`${gateway.url}/after-close`);
      let messages = 0;
      client.on('message', () => messages++);
      const end = await closed(client);
      const closedAt = Date.now();
      assert.equal(end, { code: 4000, reason: 'bye' });
      assert.ok(messages <= 1, `the client got ${messages} messages`);
      assert.ok(await waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, closeTimeout + 5_000), 'both connections closed');
      assert.ok(Date.now() - closedAt < closeTimeout + 4_000);
    } finally {
      if (streaming !== null) clearInterval(streaming);
      await gateway.close();
      await upstream.close();
    }
  });

  // The same from a hostile client: close frame, then a data frame every 20 ms, never closing its connection.
  // The upstream gets the client's code and no message after it; the client's connection is cut within closeTimeout.
  test(`${mode}: a client that keeps sending data after its close frame: the upstream gets its code and nothing after it, the session is gone within closeTimeout`, async () => {
    const closeTimeout = 600;
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, idleTimeout: 60_000, closeTimeout }), logger: memoryLogger() });
    const peerReady = nextPeer(upstream);
    const socket = await rawHandshake(gateway.port, '/client-after-close');
    let streaming: NodeJS.Timeout | null = null;
    try {
      const peer = await peerReady;
      const messages: string[] = [];
      peer.on('message', (data) => messages.push(String(data)));
      const peerEnd = closed(peer);
      socket.write(frame(0x1, Buffer.from('before'), true));
      socket.write(frame(0x8, closePayload(4001, 'client done'), true));
      streaming = setInterval(() => {
        if (!socket.destroyed) socket.write(frame(0x1, Buffer.from('after'), true));
      }, 20);
      const started = Date.now();
      const end = await within(peerEnd, closeTimeout + 5_000);
      assert.equal(end, { code: 4001, reason: 'client done' });
      assert.equal(messages, ['before']);
      assert.ok(await waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, closeTimeout + 5_000), 'both connections closed');
      assert.ok(Date.now() - started < closeTimeout + 5_000);
    } finally {
      if (streaming !== null) clearInterval(streaming);
      socket.destroy();
      await gateway.close();
      await upstream.close();
    }
  });

  // docs/websocket.md "Shutdown": shutdown() "sends close 1001 to both sides of every relayed session and waits for
  // them to finish, at most closeTimeout, after which the connections left are destroyed" (websocket.ts: + 1 s
  // backstop). Stalled readers with full queues (their close frame cannot even be written) must not stretch that to
  // the stall bound (idleTimeout, 5 min by default).
  test(`${mode}: shutdown() with five stalled readers holding full queues: every socket is closed within closeTimeout + 1 s`, async () => {
    const closeTimeout = 500;
    const upstream = await startWsUpstream({ onConnection: (ws) => flood(ws, 12, 1024 * 1024) });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout }), logger: memoryLogger() });
    const sockets: Socket[] = [];
    try {
      for (let index = 0; index < 5; index++) {
        const socket = await rawHandshake(gateway.port, `/stalled-${index}`);
        socket.pause();
        sockets.push(socket);
      }
      await sleep(800);
      const started = Date.now();
      await gateway.relay.shutdown();
      const took = Date.now() - started;
      assert.ok(took < closeTimeout + 1_000 + 1_500, `shutdown() took ${took} ms`);
      assert.ok(await waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, 2_000), `left open: ${gateway.sockets.size} client, ${upstream.sockets.size} upstream`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await gateway.close();
      await upstream.close();
    }
  });

  // The same with the other side stalled: an upstream that stopped reading while the client floods it.
  test(`${mode}: shutdown() with an upstream that stopped reading under a client's flood: every socket is closed within closeTimeout + 1 s`, async () => {
    const closeTimeout = 500;
    const upstream = await startWsUpstream({ onConnection: (ws) => (ws as unknown as { _socket: Socket })._socket.pause() });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout }), logger: memoryLogger() });
    const client = await openClient(`${gateway.url}/upstream-stalled`);
    try {
      const data = Buffer.alloc(1024 * 1024, 3);
      for (let index = 0; index < 24; index++) client.send(data);
      await sleep(800);
      const started = Date.now();
      await gateway.relay.shutdown();
      const took = Date.now() - started;
      assert.ok(took < closeTimeout + 1_000 + 1_500, `shutdown() took ${took} ms`);
      assert.ok(await waitFor(() => gateway.sockets.size === 0, 2_000), 'the client connection is closed');
      // The upstream's own socket only sees the relay's FIN once it reads again (what the relay had queued first).
      for (const peer of upstream.peers) (peer as unknown as { _socket: Socket })._socket.resume();
      assert.ok(await waitFor(() => upstream.sockets.size === 0, 5_000), 'the relay closed its upstream connection');
    } finally {
      client.terminate();
      await gateway.close();
      await upstream.close();
    }
  });
}

test.run();
