// Review s41 (issues 6 and 16): message-level size limits against oversized and compressed input.
// README: `limits` — "A bigger message closes both sides with 1009". A `ws` server given the same
// limit as its maxPayload closes with 1009 as soon as a frame header (or the inflater's output)
// passes it; through the relay the limit is only checked once the whole message has been read and
// decompressed, up to the 100 MiB default maxPayload: a declared 10 MiB frame is waited for, and a
// 16 KiB compressed fragment is inflated to 16 MiB and held, with no close at all.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { constants, deflateRawSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { noSocketsLeft, startGateway, startWsUpstream } from './helpers.js';

const handshakeHead = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}` +
  `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** A raw client: resolves once a 101 came, with the socket and the 101 head; `received()` is what followed it. */
function rawClient(port: number, head: string): Promise<{ socket: Socket; head: string; received: () => Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(head);
    let buffered = Buffer.alloc(0);
    let opened = false;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (opened) return;
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      opened = true;
      const text = buffered.subarray(0, end).toString('latin1');
      buffered = buffered.subarray(end + 4);
      if (!text.startsWith('HTTP/1.1 101')) reject(new Error(text.split('\r\n')[0]));
      else resolve({ socket, head: text, received: () => buffered });
    });
  });
}

/** A masked client frame whose header may announce more payload than follows. */
function clientFrame(first: number, payload: Buffer, announced = payload.length): Buffer {
  const mask = randomBytes(4);
  let header: Buffer;
  if (announced < 126) header = Buffer.from([first, 0x80 | announced]);
  else if (announced < 65536) header = Buffer.from([first, 0x80 | 126, announced >> 8, announced & 0xff]);
  else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = 0x80 | 127;
    header.writeUInt32BE(Math.floor(announced / 2 ** 32), 2);
    header.writeUInt32BE(announced >>> 0, 6);
  }
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, mask, body]);
}

/** The code of the first close frame in what a server sent (unmasked frames), or null. */
function closeCodeIn(data: Buffer): number | null {
  let at = 0;
  while (at + 2 <= data.length) {
    const opcode = data[at]! & 0x0f;
    let length = data[at + 1]! & 0x7f;
    let offset = 2;
    if (length === 126) [length, offset] = [data.readUInt16BE(at + 2), 4];
    else if (length === 127) [length, offset] = [Number(data.readBigUInt64BE(at + 2)), 10];
    if (opcode === 0x8) return length >= 2 ? data.readUInt16BE(at + offset) : 1005;
    at += offset + length;
  }
  return null;
}

/** Resolves when the socket closes, or destroys it after `ms` (the relay never ended it). */
function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

test('limits.client.maxMessageBytes 1 KiB: a frame announcing 10 MiB closes the client with 1009 at once, not after 10 MiB were read', async () => {
  const received: number[] = [];
  const upstream = await startWsUpstream({ onConnection: (ws) => ws.on('message', (data: Buffer) => received.push(data.length)) });
  const gateway = await startGateway({
    targetBaseUrl: upstream.url,
    websocket: websocket({ limits: { client: { maxMessageBytes: 1024 } }, closeTimeout: 500 }),
    logger: memoryLogger(),
  });
  try {
    const client = await rawClient(gateway.port, handshakeHead('/limit'));
    // The header says 10 MiB; 4 KiB of it follows: already four times the limit.
    client.socket.write(clientFrame(0x82, Buffer.alloc(4096), 10 * 1024 * 1024));
    const ended = await closedWithin(client.socket, 3_000);
    assert.ok(ended, 'the relay kept reading a message it had already seen was over the limit');
    assert.is(closeCodeIn(client.received()), 1009);
    assert.equal(received, []);
    assert.ok(await noSocketsLeft(gateway, upstream, 5_000));
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test('limits.client.maxMessageBytes 1 KiB with perMessageDeflate: a compressed fragment inflating to 16 MiB is cut with 1009, not inflated and held', async () => {
  const received: number[] = [];
  const upstream = await startWsUpstream({ onConnection: (ws) => ws.on('message', (data: Buffer) => received.push(data.length)) });
  const gateway = await startGateway({
    targetBaseUrl: upstream.url,
    websocket: websocket({ limits: { client: { maxMessageBytes: 1024 } }, perMessageDeflate: true, closeTimeout: 500 }),
    logger: memoryLogger(),
  });
  try {
    const client = await rawClient(gateway.port, handshakeHead('/bomb', 'Sec-WebSocket-Extensions: permessage-deflate\r\n'));
    assert.match(client.head, /sec-websocket-extensions: permessage-deflate/i);
    // 16 MiB of zeros deflates to about 16 KiB: the first fragment (RSV1, no FIN) of a compressed message.
    const bomb = deflateRawSync(Buffer.alloc(16 * 1024 * 1024), { finishFlush: constants.Z_SYNC_FLUSH });
    assert.ok(bomb.length < 64 * 1024);
    client.socket.write(clientFrame(0x42, bomb));
    const ended = await closedWithin(client.socket, 3_000);
    assert.ok(ended, 'the relay inflated 16 MiB past a 1 KiB limit and waited for the rest of the message');
    assert.is(closeCodeIn(client.received()), 1009);
    assert.equal(received, []);
    assert.ok(await noSocketsLeft(gateway, upstream, 5_000));
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test.run();
