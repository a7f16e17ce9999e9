import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import type { UpgradeTransport } from '@relay/core';
import { delay, waitFor } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

test('200 concurrent sessions open, echo and close, and no socket is left behind', async () => {
  const upstream = await startWsUpstream();
  const transport = watched(websocket());
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: transport });
  const clients = await Promise.all(Array.from({ length: 200 }, (_, index) => openClient(`${gateway.url}/s/${index}`)));
  assert.is(upstream.peers.length, 200);
  assert.ok(gateway.sockets.size >= 200 && upstream.sockets.size >= 200, 'every session holds a connection on each side');
  const echoes = await Promise.all(
    clients.map((client, index) => {
      const next = inbox(client).next();
      client.send(`message ${index}`);
      return next;
    }),
  );
  echoes.forEach((echo, index) => assert.is(echo.data.toString(), `message ${index}`));
  const ends = clients.map((client) => closed(client));
  const peerEnds = upstream.peers.map((peer) => closed(peer));
  clients.forEach((client, index) => client.close(index % 2 === 0 ? 1000 : 4000 + index));
  const codes = await Promise.all(peerEnds);
  assert.is(codes.filter((end) => end.code === 1000).length, 100);
  await Promise.all(ends);
  assert.ok(await noSocketsLeft(gateway, upstream, 15_000), `left: relay ${gateway.sockets.size}, upstream ${upstream.sockets.size}`);
  assert.is(gateway.relay.inFlight, 0);
  // ws reports a close a moment after the socket has gone.
  assert.ok(await waitFor(() => sessionsOf(transport).size === 0), 'the transport tracks no session');
  await gateway.close();
  await upstream.close();
});

/** A side of a session as the relay holds it: a `ws` WebSocket (terminating) or the raw socket (transparent). */
type Side = WebSocket | { writableLength: number };

type Sessions = Set<{ client: Side; upstream: Side }>;
const boundSessions = new WeakMap<UpgradeTransport, Sessions>();

/** White-box: a `websocket()` transport whose bound sessions `sessionsOf` can see. */
function watched(transport: UpgradeTransport): UpgradeTransport {
  const bind = transport.bind.bind(transport);
  const wrapped: UpgradeTransport = {
    ...transport,
    bind(config) {
      const bound = bind(config);
      boundSessions.set(wrapped, (bound as unknown as { sessions: Sessions }).sessions);
      return bound;
    },
  };
  return wrapped;
}

/** The sessions the relay's WebSocket transport tracks. */
function sessionsOf(transport: UpgradeTransport): Sessions {
  return boundSessions.get(transport)!;
}

/** Bytes the relay has queued towards a side. */
const queued = (side: Side) => ('bufferedAmount' in side ? side.bufferedAmount : side.writableLength);

const messageSize = 256 * 1024;
const messageCount = 64; // 16 MiB in all
const highWaterMark = 64 * 1024;

const modes = [
  ['transparent', {}],
  ['terminating', { onUpstreamMessage: () => undefined }],
] as const;

for (const [mode, policy] of modes) {
  for (const direction of ['upstream → slow client', 'client → slow upstream'] as const) {
    test(`backpressure (${mode}), ${direction}: the relay stops reading instead of buffering, and every message arrives in order`, async () => {
      const upstream = await startWsUpstream({ onConnection: () => {} });
      const transport = watched(websocket({ highWaterMark, ...policy }));
      const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: transport });
      const peerReady = nextPeer(upstream);
      const client = await openClient(`${gateway.url}/firehose`);
      const peer = await peerReady;
      const [sender, receiver] = direction === 'upstream → slow client' ? [peer, client] : [client, peer];
      const session = [...sessionsOf(transport)][0]!;
      const relayTowardsReceiver = receiver === client ? session.client : session.upstream;
      const box = inbox(receiver);
      receiver.pause();
      let most = 0;
      const sampler = setInterval(() => (most = Math.max(most, queued(relayTowardsReceiver))), 2);
      for (let index = 0; index < messageCount; index++) {
        const message = Buffer.alloc(messageSize, index);
        sender.send(message, { binary: true });
      }
      // Let the pipe fill up and settle.
      let last = -1;
      await waitFor(() => {
        const now = sender.bufferedAmount;
        const settled = now === last;
        last = now;
        return settled;
      }, 5000);
      await delay(200);
      assert.ok(
        most <= highWaterMark + messageSize,
        `the relay never queued more than the high-water mark plus one message towards the slow side (most: ${most})`,
      );
      assert.ok(sender.bufferedAmount > 0, `the sender is held back (${sender.bufferedAmount} bytes still queued at the sender)`);
      clearInterval(sampler);
      receiver.resume();
      assert.ok(await waitFor(() => box.all.length === messageCount, 15_000), `received ${box.all.length}/${messageCount}`);
      box.all.forEach((message, index) => {
        assert.is(message.data.length, messageSize);
        assert.is(message.data[0], index % 256);
        assert.is(message.data[messageSize - 1], index % 256);
      });
      client.close();
      await closed(client);
      assert.ok(await noSocketsLeft(gateway, upstream));
      await gateway.close();
      await upstream.close();
    });
  }
}

test.run();
