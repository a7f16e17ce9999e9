// A stage's cut of its attempt (`AttemptBound`, what retry({ deadline }) uses) reaches a WebSocket
// handshake as it reaches an HTTP attempt, in both modes: one in flight at the upstream is closed at
// once, and one still in an inner stage when it is cut never reaches the upstream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, type Socket } from 'node:net';
import { AttemptBound, RelayError, type ProxyRequest, type Stage } from '@relay/core';
import { delay, memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { startGateway, startRawUpstream } from './helpers.js';

const modes: Array<[string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

/** Bounds each attempt to `ms` and cuts it then, as `retry({ deadline })` does. */
function cutAfter(ms: number): Stage {
  return {
    name: 'cut-after',
    wrap: (next) =>
      async function cutAfterStage(request: ProxyRequest) {
        const bound = new AttemptBound(request);
        const timer = setTimeout(() => bound.cut(new RelayError('ERR_DEADLINE', `cut after ${ms} ms`)), ms);
        try {
          return await next({ ...request, bound });
        } finally {
          clearTimeout(timer);
        }
      },
  };
}

/** An inner stage that holds each attempt `ms` (a token fetch). */
function hold(ms: number): Stage {
  return {
    name: 'hold',
    wrap: (next) =>
      async function holdStage(request: ProxyRequest) {
        await delay(ms);
        return next(request);
      },
  };
}

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

for (const [mode, options] of modes) {
  test(`${mode}: a cut of the handshake in flight closes its upstream connection at once; the client gets the cut's 504`, async () => {
    const upstream = await startRawUpstream(() => undefined); // never answers the handshake
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger(), stages: [cutAfter(200)] });
    const client = handshakeClient(gateway.port);
    try {
      assert.ok(await waitFor(() => upstream.heads.length === 1), 'the handshake reached the upstream');
      assert.ok(await waitFor(() => /ERR_DEADLINE/.test(client.answer()), 3000), `no 504 for the cut: ${JSON.stringify(client.answer().slice(0, 40))}`);
      assert.match(client.answer(), /^HTTP\/1\.1 504 /);
      assert.ok(await waitFor(() => upstream.sockets.size === 0, 3000), 'the upstream connection stayed open after the cut');
      assert.ok(await waitFor(() => gateway.relay.inFlight === 0, 3000), 'the handshake is still in flight');
    } finally {
      client.socket.destroy();
      await gateway.close();
      await upstream.close();
    }
  });

  test(`${mode}: a handshake still in an inner stage when it is cut never reaches the upstream`, async () => {
    const upstream = await startRawUpstream(() => undefined);
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger(), stages: [cutAfter(100), hold(300)] });
    const client = handshakeClient(gateway.port);
    try {
      assert.ok(await waitFor(() => /ERR_DEADLINE/.test(client.answer()), 3000), `no 504 for the cut: ${JSON.stringify(client.answer().slice(0, 40))}`);
      await delay(400); // the held handshake reaches the transport meanwhile
      assert.is(upstream.heads.length, 0, 'the cut handshake reached the upstream');
    } finally {
      client.socket.destroy();
      await gateway.close();
      await upstream.close();
    }
  });
}

test.run();
