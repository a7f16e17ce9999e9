// The handshake's own bounds: a client that leaves before the upstream answered is seen at once
// (not at timeout.read), and timeout.read is a fixed deadline for the upstream's answer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Socket } from 'node:net';
import { delay, memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { startGateway, startRawUpstream, startWsUpstream } from './helpers.js';

const modes: Array<[string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

/** A raw client that sends a WebSocket handshake to `port` and collects what it gets back. */
function handshakeClient(port: number): { socket: Socket; answer: () => string } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
  socket.write(
    'GET /room HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  return { socket, answer: () => answer };
}

/** A masked text frame, as a client sends it. */
function clientTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

for (const [mode, options] of modes) {
  test(`${mode}: a client that closes its connection while the upstream is still deciding the handshake: the upstream connection is closed at once and the request leaves inFlight`, async () => {
    // The upstream takes its time over the handshake (an auth check, a slow backend) and watches its
    // connection, as nginx does its client's (EPOLLRDHUP). Node hands the relay the client socket
    // unread and half-open: its FIN must still be seen, and the upstream connection closed, not
    // held (with the request in flight) until timeout.read.
    const upstream = await startRawUpstream(() => undefined);
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
    const client = handshakeClient(gateway.port);
    assert.ok(await waitFor(() => upstream.heads.length === 1), 'the handshake reached the upstream');
    assert.is(gateway.relay.inFlight, 1);
    // A browser tab closed, a client's own handshake timeout: the socket is closed (a FIN).
    client.socket.destroy();
    const upstreamClosed = await waitFor(() => upstream.sockets.size === 0, 3000);
    const counted = gateway.relay.inFlight;
    const gatewaySockets = gateway.sockets.size;
    await gateway.close();
    await upstream.close();
    assert.ok(upstreamClosed, 'the upstream connection is closed within 3 s of the client leaving (the read timeout is 30 s)');
    assert.is(counted, 0, 'relay.inFlight is back to 0');
    assert.is(gatewaySockets, 0, 'the client-side socket is closed');
  });

  test(`${mode}: what a client sends while the handshake is pending reaches the session once it opens, in order`, async () => {
    // Watching for the client's FIN reads the socket: bytes sent before the 101 are kept, not dropped.
    let release: ((ok: boolean) => void) | null = null;
    const upstream = await startWsUpstream({ verifyClient: (_info, done) => (release = done) });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
    const client = handshakeClient(gateway.port);
    assert.ok(await waitFor(() => release !== null), 'the handshake reached the upstream');
    client.socket.write(Buffer.concat([clientTextFrame('one'), clientTextFrame('two')]));
    await delay(50);
    release!(true);
    const echoed = await waitFor(() => client.answer().includes('one') && client.answer().includes('two'), 3000);
    const answer = client.answer();
    client.socket.destroy();
    await gateway.close();
    await upstream.close();
    assert.match(answer, /^HTTP\/1\.1 101 /);
    assert.ok(echoed, 'both early messages were echoed');
    assert.ok(answer.indexOf('one') < answer.indexOf('two'), 'in order');
  });

  test(`${mode}: an upstream that trickles its 101 head (a header line every 100 ms) is cut at timeout.read: 504, its connection closed, nothing left in flight`, async () => {
    // core's `read` "bounds the wait for the final response head, counted from the end of the request (a
    // head that trickles in … does not extend it)"; the ws README: `read` is "the wait for its answer".
    const upstream = await startRawUpstream((socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\n');
      const drip = setInterval(() => socket.write('X-Drip: 1\r\n'), 100);
      socket.on('close', () => clearInterval(drip));
    });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger(), timeout: { read: 500 } });
    const started = Date.now();
    const client = handshakeClient(gateway.port);
    const answered = await waitFor(() => client.answer().length > 0, 4000);
    const elapsed = Date.now() - started;
    const upstreamClosed = await waitFor(() => upstream.sockets.size === 0, 1000);
    const counted = gateway.relay.inFlight;
    client.socket.destroy();
    await gateway.close();
    await upstream.close();
    assert.ok(answered, 'the client is answered within 4 s (timeout.read is 500 ms)');
    assert.ok(elapsed < 1500, `answered after ${elapsed} ms`);
    assert.match(client.answer(), /^HTTP\/1\.1 504 /);
    assert.ok(upstreamClosed, 'the upstream connection is closed');
    assert.is(counted, 0, 'relay.inFlight is back to 0');
  });
}

test.run();
