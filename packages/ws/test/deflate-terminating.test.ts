// permessage-deflate (RFC 7692) in terminating sessions (`perMessageDeflate: true`, each link
// negotiated on its own), seen from raw clients:
// - an offer the relay's own `ws` server refuses (400) is refused before the upstream is contacted,
//   as the README's error table says of every malformed client handshake;
// - backpressure keeps what the relay holds near highWaterMark plus the message in flight when
//   messages arrive compressed (one TCP read of small compressed frames inflates to many full-size
//   messages): the relay hands `ws` one message at a time, and nothing is lost or reordered.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { constants, deflateRawSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WebSocket } from 'ws';
import { memoryLogger, sendRaw } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const handshakeHead = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}` +
  `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** A raw client: resolves once a 101 came, with the socket and the 101 head. */
function rawClient(port: number, head: string): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(head);
    let buffered = '';
    socket.on('data', function onHead(chunk: Buffer) {
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.removeListener('data', onHead);
      socket.resume();
      const text = buffered.slice(0, end);
      if (!text.startsWith('HTTP/1.1 101')) reject(new Error(text.split('\r\n')[0]));
      else resolve({ socket, head: text });
    });
  });
}

/** A masked client frame (payload under 64 KiB). */
function clientFrame(first: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([first, 0x80 | length]) : Buffer.from([first, 0x80 | 126, length >> 8, length & 0xff]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, mask, body]);
}

const terminatingDeflate = { onClientMessage: () => undefined, perMessageDeflate: true, closeTimeout: 500 } as const;

for (const offer of ['permessage-deflate; client_max_window_bits=99', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover']) {
  test(`terminating, perMessageDeflate: a client offering "${offer}" gets 400 and the upstream is never contacted`, async () => {
    const upstream = await startWsUpstream({ perMessageDeflate: true });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(terminatingDeflate), logger: memoryLogger() });
    try {
      const answer = String(await sendRaw(gateway.port, handshakeHead('/bad-offer', `Sec-WebSocket-Extensions: ${offer}\r\n`)));
      // A `ws` server with permessage-deflate answers this offer 400 itself.
      assert.match(answer, /^HTTP\/1\.1 400 /);
      // README, "Errors it raises": malformed client handshake → HTTP 400, upstream never contacted.
      assert.is(upstream.handshakes.length, 0, 'the upstream was opened (and closed with 1011) for a handshake the relay then refused');
      assert.is(upstream.peers.length, 0);
      assert.ok(await noSocketsLeft(gateway, upstream, 5_000));
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
}

// README, Backpressure: "what the relay holds per direction stays around highWaterMark plus one read
// (transparent) or the message in flight (terminating, at most maxPayload)". Here: highWaterMark 1 MiB,
// messages of 2 MiB, an upstream that reads nothing. 40 compressed messages take 80 KiB on the wire.
test('terminating, perMessageDeflate: compressed messages towards an upstream that stopped reading: the relay holds a few MiB, not every message of one read', async () => {
  let upstreamSocket: Socket | null = null;
  const upstream = await startWsUpstream({
    // The upstream link carries the messages uncompressed, as a plain upstream would take them.
    perMessageDeflate: false,
    onConnection: (ws: WebSocket) => {
      upstreamSocket = (ws as unknown as { _socket: Socket })._socket;
      upstreamSocket.pause();
    },
  });
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(terminatingDeflate), logger: memoryLogger() });
  try {
    const client = await rawClient(gateway.port, handshakeHead('/flood', 'Sec-WebSocket-Extensions: permessage-deflate\r\n'));
    assert.match(client.head, /sec-websocket-extensions: permessage-deflate/i);
    // RFC 7692 §7.2.1: the compressed payload without its trailing 00 00 ff ff.
    const compressed = deflateRawSync(Buffer.alloc(2 * 1024 * 1024), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    const flood = Buffer.concat(Array.from({ length: 40 }, () => clientFrame(0xc2, compressed)));
    assert.ok(flood.length < 128 * 1024);
    gc();
    const before = process.memoryUsage().arrayBuffers;
    client.socket.write(flood);
    let held = 0;
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      gc();
      held = Math.max(held, process.memoryUsage().arrayBuffers - before);
    }
    const heldMiB = Math.round(held / 1024 / 1024);
    // 1 MiB + one 2 MiB message, with wide room for what is being written; 80 MiB were relayed in all.
    assert.ok(heldMiB < 16, `the relay held ${heldMiB} MiB for a reader that takes nothing (highWaterMark 1 MiB, messages of 2 MiB)`);
    client.socket.destroy();
  } finally {
    (upstreamSocket as Socket | null)?.resume();
    await gateway.close();
    await upstream.close();
  }
});

/** Pauses a WebSocket's connection (it reads nothing) and resumes it after `ms`. */
function stall(ws: WebSocket, ms: number): Promise<void> {
  const socket = (ws as unknown as { _socket: Socket })._socket;
  socket.pause();
  return new Promise((resolve) =>
    setTimeout(() => {
      socket.resume();
      resolve();
    }, ms),
  );
}

for (const direction of ['client to upstream', 'upstream to client'] as const) {
  test(`terminating, perMessageDeflate, ${direction}: towards a reader that stalls, 250 compressed messages and the close arrive whole and in order`, async () => {
    const upstream = await startWsUpstream({ perMessageDeflate: true, onConnection: () => {} });
    const gateway = await startGateway({
      targetBaseUrl: upstream.url,
      websocket: websocket({ ...terminatingDeflate, highWaterMark: 64 * 1024 }),
      logger: memoryLogger(),
    });
    try {
      const peerReady = nextPeer(upstream);
      const client = await openClient(`${gateway.url}/order`, [], { perMessageDeflate: true });
      const peer = await peerReady;
      assert.match(client.extensions, /permessage-deflate/);
      const [sender, reader] = direction === 'client to upstream' ? [client, peer] : [peer, client];
      const box = inbox(reader);
      const readerEnd = closed(reader);
      const stalled = stall(reader, 200);
      const sent: string[] = [];
      for (let i = 0; i < 250; i++) {
        const text = `${i} `.padEnd(64 * 1024, 'x');
        sent.push(text);
        sender.send(text);
      }
      sender.close(4000, 'done');
      await stalled;
      assert.equal(await readerEnd, { code: 4000, reason: 'done' });
      assert.is(box.all.length, 250);
      assert.ok(box.all.every((message, i) => message.data.toString() === sent[i]), 'every message, in order');
      assert.ok(await noSocketsLeft(gateway, upstream, 5_000));
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
}

test.run();
