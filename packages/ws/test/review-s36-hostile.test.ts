// Review s36 (issues 6 and 16): @relay/ws as a hostile or unusual client meets it: browser-style
// handshakes, refusals framed by connection close, garbage and half-closes after the 101, abrupt
// disconnects by the hundred, oversized frame headers, and a slow reader against the idle timeout.
// Both modes, raw TCP clients where a `ws` client would refuse to misbehave.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, sendRaw, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, nextPeer, noSocketsLeft, openClient, refusedHandshake, startGateway, startRawUpstream, startWsUpstream } from './helpers.js';

const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

const handshakeHead = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}` +
  `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** A raw client: writes `head`, resolves once a 101 came, with the socket and what followed the head. */
function rawClient(port: number, head: string): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(head);
    let buffered = Buffer.alloc(0);
    socket.on('data', function onHead(chunk: Buffer) {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.removeListener('data', onHead);
      const status = buffered.subarray(0, end).toString('latin1');
      if (!status.startsWith('HTTP/1.1 101')) reject(new Error(status.split('\r\n')[0]));
      else resolve({ socket, rest: buffered.subarray(end + 4) });
    });
  });
}

/** A masked client frame (RFC 6455 §5.2/§5.3). */
function clientFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const mask = randomBytes(4);
  const length = payload.length;
  const header = length < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | length]) : Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, length >> 8, length & 0xff]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, mask, body]);
}

for (const [mode, options] of modes) {
  // Firefox sends `Connection: keep-alive, Upgrade`; RFC 6455 §4.2.1 asks only that Connection
  // *include* the "Upgrade" token (and Upgrade the "websocket" one, case-insensitively).
  test(`${mode}: a browser-style handshake (Connection: keep-alive, Upgrade; Upgrade: WebSocket) is relayed`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
    const raw = await sendRaw(
      gateway.port,
      'GET /ff HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nOrigin: https://app.example\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      500,
    );
    assert.match(raw, /^HTTP\/1\.1 101 /);
    assert.match(raw, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
    assert.is(upstream.handshakes[0]!.headers.origin, 'https://app.example');
    assert.ok(await noSocketsLeft(gateway, upstream));
    await gateway.close();
    await upstream.close();
  });

  // Issue 6: "the upstream's handshake rejection (401, 403, 404 …) reaches the client as that HTTP
  // status"; a body framed by the connection's close (RFC 9112 §6.3 rule 8) is a body too.
  test(`${mode}: an upstream 403 whose body ends with the connection reaches the client with that body`, async () => {
    const upstream = await startRawUpstream((socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\norigin not allowed'));
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
    const refusal = await refusedHandshake(`${gateway.url}/x`, [], { origin: 'https://evil.example' });
    assert.is(refusal.status, 403);
    assert.is(refusal.body, 'origin not allowed');
    await gateway.close();
    await upstream.close();
  });

  // A hostile client after the 101: bytes that are no frame. Directly, the server closes with 1002
  // and drops the connection; through the relay the same must happen and nothing may stay open.
  test(`${mode}: garbage after the 101: the session ends, both connections are closed, nothing leaks`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout: 500 }), logger: memoryLogger() });
    const { socket } = await rawClient(gateway.port, handshakeHead('/garbage'));
    socket.resume();
    const ended = new Promise((resolve) => socket.once('close', resolve));
    socket.write(Buffer.from('GET / HTTP/1.1\r\nHost: nonsense\r\n\r\n'));
    await ended;
    assert.ok(await noSocketsLeft(gateway, upstream, 5_000), 'no socket left on either server');
    await gateway.close();
    await upstream.close();
  });

  // A client that sends FIN right after its first frame (half-close without a close frame): it
  // can send nothing more, so it is lost (issue 6: "either side vanishing tears the other down").
  test(`${mode}: a client that half-closes after a message: the upstream gets the message, then 1001`, async () => {
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
    const peerReady = nextPeer(upstream);
    const { socket } = await rawClient(gateway.port, handshakeHead('/half'));
    socket.resume();
    const peer = await peerReady;
    const got: string[] = [];
    peer.on('message', (data) => got.push(String(data)));
    const peerEnd = closed(peer);
    socket.end(clientFrame(0x1, Buffer.from('last words')));
    const end = await peerEnd;
    assert.equal(got, ['last words']);
    assert.is(end.code, 1001);
    assert.ok(await noSocketsLeft(gateway, upstream, 5_000));
    await gateway.close();
    await upstream.close();
  });

  // Issue 6: "nothing leaks (count open sockets in tests)": sessions whose clients vanish abruptly
  // (RST, no close frame), and sessions whose upstreams do, leave no connection behind.
  test(`${mode}: 60 sessions dropped abruptly (30 by the client, 30 by the upstream): no socket left on either server`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout: 500 }), logger: memoryLogger() });
    const pairs = [];
    for (let index = 0; index < 60; index++) {
      const peerReady = nextPeer(upstream);
      const client = await openClient(`${gateway.url}/drop/${index}`);
      pairs.push({ client, peer: await peerReady });
    }
    assert.is(upstream.sockets.size, 60);
    pairs.forEach(({ client, peer }, index) => (index % 2 === 0 ? client.terminate() : peer.terminate()));
    assert.ok(await noSocketsLeft(gateway, upstream, 8_000), `left: relay ${gateway.sockets.size}, upstream ${upstream.sockets.size}`);
    await gateway.close();
    await upstream.close();
  });

  // A frame header announcing 2^63-1 bytes: directly, a `ws` server closes with 1009 at once
  // (its maxPayload); through the relay the client must see the session end, not a hang.
  test(`${mode}: a frame header announcing 2^63-1 bytes: the client is closed promptly, nothing leaks`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout: 500 }), logger: memoryLogger() });
    const { socket } = await rawClient(gateway.port, handshakeHead('/huge'));
    socket.resume();
    const ended = new Promise((resolve) => socket.once('close', resolve));
    const header = Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]);
    socket.write(Buffer.concat([header, Buffer.alloc(1024)]));
    const timer = setTimeout(() => socket.destroy(new Error('still open')), 5_000);
    await ended;
    clearTimeout(timer);
    assert.ok(await noSocketsLeft(gateway, upstream, 5_000));
    await gateway.close();
    await upstream.close();
  });
}

// docs/websocket.md "Liveness": idleTimeout ends sessions "with no message, ping or pong in either
// direction"; it is the rule for a peer that *vanished*. A slow reader that is still taking a big
// message is neither silent nor gone. Envoy treats firing its stream idle timer on such a stream as a
// bug (envoyproxy/envoy#34035, "Envoy should not fire stream idle timer when it's active"), and
// nginx re-arms send_timeout on every write that makes progress.
// The idle timeout is longer than what the kernel's socket buffers hide from node (a few MiB: their
// draining shows no progress in userland, and the send buffer wakes the writer only a third at a
// time, about 1 s here), as a production timeout (60 s) is.
const slowCases: ReadonlyArray<readonly [string, WebSocketOptions, number]> = [
  // Transparent: the relay stops reading the upstream while 1 MiB (the default highWaterMark) waits for the client.
  ['transparent', { idleTimeout: 3_000 }, 16 * 1024 * 1024],
  // Terminating: the message is handed to the client's link whole, and read from it for a while.
  ['terminating', { onClientMessage: () => undefined, idleTimeout: 3_000 }, 16 * 1024 * 1024],
];

for (const [mode, options, size] of slowCases) {
  test(`${mode}: a slow reader still receiving a big message is not closed by idleTimeout while bytes keep flowing`, async () => {
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout: 500 }), logger: memoryLogger() });
    const peerReady = nextPeer(upstream);
    const { socket, rest } = await rawClient(gateway.port, handshakeHead('/slow'));
    const reader = setInterval(() => socket.resume(), 40);
    try {
      const peer = await peerReady;
      let peerClosedAt = 0;
      void closed(peer).then(() => (peerClosedAt = Date.now()));
      let received = rest.length;
      socket.pause();
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        socket.pause();
      });
      peer.send(Buffer.alloc(size, 1));
      const started = Date.now();
      // One read (at most 64 KiB) every 40 ms, about 1.5 MiB/s: bytes flow all along, and the
      // message takes several idle timeouts to arrive.
      const done = await waitFor(() => received >= size || peerClosedAt !== 0, 60_000);
      assert.ok(done);
      assert.is(peerClosedAt, 0, `the upstream was closed ${peerClosedAt - started} ms into a transfer still in progress (${received} of ${size} bytes read)`);
      assert.ok(Date.now() - started > 6_000, 'the transfer took at least two idle timeouts');
    } finally {
      clearInterval(reader);
      socket.destroy();
      assert.ok(await noSocketsLeft(gateway, upstream, 8_000));
      await gateway.close();
      await upstream.close();
    }
  });
}

// Issue 6: "Close: each side's close code and reason are passed to the other"; README: closeTimeout
// is "how long a side may take to *answer* a close frame". A slow client still reading the data the
// upstream sent before its close has not been sent that close frame yet, so it cannot be late
// answering it: directly, the upstream's close reaches it after the data, and the session ends clean.
for (const [mode, options] of modes) {
  test(`${mode}: data the upstream sent before its close reaches a slow client whole, then the close (closeTimeout counts from the close frame, not before it)`, async () => {
    const size = 6 * 1024 * 1024;
    const upstream = await startWsUpstream({ onConnection: () => {} });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, closeTimeout: 700 }), logger: memoryLogger() });
    const peerReady = nextPeer(upstream);
    const { socket, rest } = await rawClient(gateway.port, handshakeHead('/bye'));
    const reader = setInterval(() => socket.resume(), 40);
    try {
      const peer = await peerReady;
      let received = rest.length;
      let tail = Buffer.alloc(0);
      let ended = false;
      socket.pause();
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        tail = Buffer.concat([tail, chunk]).subarray(-16);
        socket.pause();
      });
      socket.on('close', () => (ended = true));
      peer.send(Buffer.alloc(size, 2));
      peer.close(1000, 'done');
      const started = Date.now();
      assert.ok(await waitFor(() => ended, 60_000));
      // A 64-bit length header (10 bytes), the payload, and an unmasked close frame: 1000 "done".
      assert.is(received, 10 + size + 8, `the client got ${received} of ${10 + size + 8} bytes before the relay dropped it (${Date.now() - started} ms)`);
      assert.equal([...tail.subarray(-8)], [0x88, 6, 0x03, 0xe8, ...Buffer.from('done')]);
    } finally {
      clearInterval(reader);
      socket.destroy();
      assert.ok(await noSocketsLeft(gateway, upstream, 8_000));
      await gateway.close();
      await upstream.close();
    }
  });
}

test.run();
