// Review s40 (leaks): a client that leaves while the upstream has not yet answered the handshake.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'node:net';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { startGateway, startRawUpstream, startWsUpstream } from './helpers.js';

const modes: Array<[string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

for (const [mode, options] of modes) {
  test(`${mode}: a client that closes its connection while the upstream is still deciding the handshake: the upstream connection is closed at once and the request leaves inFlight`, async () => {
    // The upstream takes its time over the handshake (an auth check, a slow backend): it has not
    // answered when the client gives up. nginx sees the client's FIN (EPOLLRDHUP) and closes the
    // upstream connection; the relay must not hold it (and the request in flight) until the read timeout.
    let release: ((ok: boolean) => void) | null = null;
    const upstream = await startWsUpstream({ verifyClient: (_info, done) => (release = done) });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
    const client = connect(gateway.port, '127.0.0.1');
    client.on('error', () => {});
    client.write(
      'GET /room HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    assert.ok(await waitFor(() => release !== null && upstream.sockets.size === 1), 'the handshake reached the upstream');
    assert.is(gateway.relay.inFlight, 1);
    // A browser tab closed, a client's own handshake timeout: the socket is closed (a FIN).
    client.destroy();
    const upstreamClosed = await waitFor(() => upstream.sockets.size === 0, 3000);
    const counted = gateway.relay.inFlight;
    const gatewaySockets = gateway.sockets.size;
    release!(false);
    await gateway.close();
    await upstream.close();
    assert.ok(upstreamClosed, 'the upstream connection is closed within 3 s of the client leaving (the read timeout is 30 s)');
    assert.is(counted, 0, 'relay.inFlight is back to 0');
    assert.is(gatewaySockets, 0, 'the client-side socket is closed');
  });
}

for (const [mode, options] of modes) {
  test(`${mode}: an upstream that trickles its 101 head (a header line every 100 ms) is cut at timeout.read: 504, its connection closed, nothing left in flight`, async () => {
    // core's `read` "bounds the wait for the final response head, counted from the end of the request (a
    // head that trickles in … does not extend it)"; the ws README: `read` is "the wait for its answer".
    const upstream = await startRawUpstream((socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\n');
      const drip = setInterval(() => socket.write('X-Drip: 1\r\n'), 100);
      socket.on('close', () => clearInterval(drip));
    });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger(), timeout: { read: 500 } });
    const client = connect(gateway.port, '127.0.0.1');
    client.on('error', () => {});
    let answer = '';
    client.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    client.write(
      'GET /room HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const answered = await waitFor(() => answer.length > 0, 4000);
    const upstreamClosed = await waitFor(() => upstream.sockets.size === 0, 1000);
    const counted = gateway.relay.inFlight;
    client.destroy();
    await gateway.close();
    await upstream.close();
    assert.ok(answered, 'the client is answered within 4 s (timeout.read is 500 ms)');
    assert.match(answer, /^HTTP\/1\.1 504 /);
    assert.ok(upstreamClosed, 'the upstream connection is closed');
    assert.is(counted, 0, 'relay.inFlight is back to 0');
  });
}

test.run();
