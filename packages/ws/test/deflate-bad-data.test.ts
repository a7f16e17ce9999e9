// Terminating sessions with perMessageDeflate: a client whose compressed payload does not inflate
// sent invalid message data. `ws` itself fails such a connection with 1007
// (permessage-deflate.js inflateOnError sets the status 1007), and the README's error table lists
// the client's bad data as 1009/1007/1002 to both sides; 1011 `relay error` is for a hook that threw.
// Before, the relay answered 1011 `relay error` to both sides and logged it as "closed with 1011".
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { constants, deflateRawSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { WebSocket } from 'ws';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { closed, nextPeer, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

/** A masked client frame (payload under 126 bytes). */
function clientFrame(first: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([Buffer.from([first, 0x80 | body.length]), mask, body]);
}

const socketOf = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket;

for (const trailing of [false, true]) {
  test(`terminating, perMessageDeflate: a client message that does not inflate closes both sides with 1007, not 1011 "relay error"${trailing ? ' (more messages in the same read)' : ''}`, async () => {
    const logger = memoryLogger();
    const upstream = await startWsUpstream({ perMessageDeflate: true, onConnection: () => {} });
    const gateway = await startGateway({
      targetBaseUrl: upstream.url,
      websocket: websocket({ perMessageDeflate: true, onClientMessage: () => undefined }),
      logger,
    });
    try {
      const peerReady = nextPeer(upstream);
      const client = await openClient(`${gateway.url}/corrupt`, [], { perMessageDeflate: true });
      const peer = await peerReady;
      assert.match(client.extensions, /permessage-deflate/);
      const clientEnd = closed(client);
      const peerEnd = closed(peer);
      // RSV1 set, a payload that is not a deflate stream (a reserved block type).
      const frames = [clientFrame(0xc2, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x12]))];
      if (trailing) frames.push(clientFrame(0xc1, deflateRawSync(Buffer.from('after'), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4)));
      socketOf(client).write(Buffer.concat(frames));
      const [clientClose, peerClose] = await Promise.all([clientEnd, peerEnd]);
      assert.equal(clientClose, { code: 1007, reason: 'invalid message data' }, 'the client is told its data was invalid, as ws would tell it');
      assert.equal(peerClose, { code: 1007, reason: 'invalid message data' });
      await waitFor(() => logger.lines.some((line) => line.message.startsWith('websocket session')));
      const line = logger.lines.find((entry) => entry.message.startsWith('websocket session'))!;
      assert.is(line.message, 'websocket session failed: client error, closed with 1007');
      assert.ok(await noSocketsLeft(gateway, upstream, 5_000));
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
}

test.run();
