// `limits.*.maxMessageBytes` (with `maxPayload`) is each side's `maxPayload` in `ws`: an over-size
// message is cut with 1009 at its frame header, or as the inflater's output passes the limit, as a
// `ws` server given that limit would, instead of being read (and decompressed) whole first. Both
// sides hear 1009 `message too big`, logged as the policy's close.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { constants, deflateRawSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor, type MemoryLogger } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { sideMaxPayload, sizeLimitIsPolicy, resolvePolicy } from '../src/policy.js';
import { closed, nextPeer, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

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
  return closeFrameIn(data)?.code ?? null;
}

/** The first close frame in what a server sent (unmasked frames): its code and reason, or null. */
function closeFrameIn(data: Buffer): { code: number; reason: string } | null {
  let at = 0;
  while (at + 2 <= data.length) {
    const opcode = data[at]! & 0x0f;
    let length = data[at + 1]! & 0x7f;
    let offset = 2;
    if (length === 126) [length, offset] = [data.readUInt16BE(at + 2), 4];
    else if (length === 127) [length, offset] = [Number(data.readBigUInt64BE(at + 2)), 10];
    if (opcode === 0x8) {
      if (length < 2) return { code: 1005, reason: '' };
      return { code: data.readUInt16BE(at + offset), reason: data.subarray(at + offset + 2, at + offset + length).toString() };
    }
    at += offset + length;
  }
  return null;
}

/** The one info line of a session the policy closed for an over-size message. */
async function policyLine(logger: MemoryLogger) {
  await waitFor(() => logger.lines.some((line) => line.message.startsWith('websocket session')));
  const lines = logger.lines.filter((line) => line.message.startsWith('websocket session'));
  assert.is(lines.length, 1);
  return lines[0]!;
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
  const logger = memoryLogger();
  const upstreamEnd: Array<{ code: number; reason: string }> = [];
  upstream.wss.on('connection', (ws) => ws.on('close', (code, reason) => upstreamEnd.push({ code, reason: reason.toString() })));
  const gateway = await startGateway({
    targetBaseUrl: upstream.url,
    websocket: websocket({ limits: { client: { maxMessageBytes: 1024 } }, closeTimeout: 500 }),
    logger,
  });
  try {
    const client = await rawClient(gateway.port, handshakeHead('/limit'));
    // The header says 10 MiB; 4 KiB of it follows: already four times the limit.
    client.socket.write(clientFrame(0x82, Buffer.alloc(4096), 10 * 1024 * 1024));
    const ended = await closedWithin(client.socket, 3_000);
    assert.ok(ended, 'the relay kept reading a message it had already seen was over the limit');
    assert.equal(closeFrameIn(client.received()), { code: 1009, reason: 'message too big' });
    assert.equal(received, []);
    // README, limits: "a bigger message closes both sides with 1009", logged as the policy's close.
    assert.ok(await waitFor(() => upstreamEnd.length === 1));
    assert.equal(upstreamEnd, [{ code: 1009, reason: 'message too big' }]);
    const line = await policyLine(logger);
    assert.is(line.level, 'info');
    assert.is(line.message, "websocket session closed by the relay's policy: message too big");
    assert.is(line.fields.closeCode, 1009);
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

test('limits.upstream.maxMessageBytes with perMessageDeflate: an upstream message inflating past the limit closes both sides with 1009 "message too big"', async () => {
  const upstream = await startWsUpstream({ perMessageDeflate: true, onConnection: () => {} });
  const logger = memoryLogger();
  const gateway = await startGateway({
    targetBaseUrl: upstream.url,
    websocket: websocket({ limits: { upstream: { maxMessageBytes: 64 * 1024 } }, perMessageDeflate: true }),
    logger,
  });
  try {
    const peerReady = nextPeer(upstream);
    const client = await openClient(`${gateway.url}/down`);
    const peer = await peerReady;
    const received: number[] = [];
    client.on('message', (data: Buffer) => received.push(data.length));
    const clientEnd = closed(client);
    const peerEnd = closed(peer);
    peer.send(Buffer.alloc(64 * 1024), { binary: true }); // at the limit: passes
    peer.send(Buffer.alloc(8 * 1024 * 1024), { binary: true }); // about 8 KiB compressed
    assert.equal(await clientEnd, { code: 1009, reason: 'message too big' });
    assert.equal(await peerEnd, { code: 1009, reason: 'message too big' }, 'the upstream is told why too');
    assert.equal(received, [64 * 1024]);
    const line = await policyLine(logger);
    assert.is(line.level, 'info');
    assert.match(line.message, /policy: message too big/);
    assert.ok(await noSocketsLeft(gateway, upstream, 5_000));
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test('limits.session.maxMessageBytes bounds both directions; maxPayload still applies when smaller, and stays an error', () => {
  const policy = resolvePolicy({ limits: { client: { maxMessageBytes: 4096 }, session: { maxMessageBytes: 8192 } } });
  assert.is(sideMaxPayload(100 * 1024 * 1024, policy, 'client'), 4096);
  assert.is(sideMaxPayload(100 * 1024 * 1024, policy, 'upstream'), 8192);
  assert.is(sideMaxPayload(0, policy, 'upstream'), 8192, 'maxPayload 0 is no limit, not the smallest');
  assert.is(sideMaxPayload(1000, policy, 'client'), 1000);
  assert.is(sideMaxPayload(0, null, 'client'), 0);
  assert.is(sideMaxPayload(0, resolvePolicy({ limits: { client: { maxMessageBytes: 2 ** 40 } } }), 'client'), 2 ** 31 - 1, 'never a value ws would wrap to 0');
  assert.ok(sizeLimitIsPolicy(100 * 1024 * 1024, policy, 'client'));
  assert.not.ok(sizeLimitIsPolicy(1000, policy, 'client'), 'maxPayload is the tighter limit: its 1009 is logged as an error, as before');
  assert.not.ok(sizeLimitIsPolicy(1000, null, 'client'));
});

test('limits.*.maxMessageBytes is a whole number of bytes: 0.5 would round to ws\'s 0, no limit at all', () => {
  for (const group of ['client', 'upstream', 'session'] as const) {
    for (const maxMessageBytes of [0.5, 0.999, 1024.5]) {
      assert.throws(() => websocket({ limits: { [group]: { maxMessageBytes } } }), (error: Error) => error instanceof RangeError && /maxMessageBytes must be a whole number of bytes/.test(error.message));
    }
  }
});

test.run();
