// Sessions as an operator sees them: shutdown while a frame is in flight, close handshakes
// a peer never finishes, and a hook's close reason.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, inbox, nextPeer, openClient, rawHandshake, startGateway, startRawUpstream, startWsUpstream, switchingProtocols } from './helpers.js';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An unmasked close frame (upstream to relay). */
const closeFrame = (code: number) => Buffer.from([0x88, 0x02, code >> 8, code & 0xff]);

test('transparent: shutdown() while the upstream is in the middle of a frame: the client gets the whole message, then 1001', async () => {
  const payload = randomBytes(1000);
  let upstreamSocket: Socket | null = null;
  let closeAsked = false;
  let finished = false;
  const upstream = await startRawUpstream((socket, key) => {
    socket.write(switchingProtocols(key));
    upstreamSocket = socket;
    // A binary frame of 1000 bytes, of which only the header and the first half are sent for now.
    socket.write(Buffer.concat([Buffer.from([0x82, 126, 1000 >> 8, 1000 & 0xff]), payload.subarray(0, 500)]));
    // The relay's close frame is answered with one, then the connection is closed: after the rest
    // of the frame, as a real server writes its frames whole and in order.
    socket.on('data', () => {
      closeAsked = true;
      if (finished && !socket.writableEnded) socket.end(closeFrame(1001));
    });
  });
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ closeTimeout: 3_000 }), logger: memoryLogger() });
  const client = await openClient(`${gateway.url}/stream`);
  const box = inbox(client);
  const ended = closed(client);
  await delay(200);
  const shutdown = gateway.relay.shutdown({ timeout: 1_000 });
  await delay(200);
  upstreamSocket!.write(payload.subarray(500));
  finished = true;
  if (closeAsked) upstreamSocket!.end(closeFrame(1001));
  const end = await ended;
  await shutdown;
  await gateway.close();
  await upstream.close();
  assert.is(box.all.length, 1, `the message in flight reaches the client whole (the client got ${box.all.length} messages, then ${end.code})`);
  assert.ok(box.all[0]?.data.equals(payload));
  assert.is(end.code, 1001, `the client gets 1001 after it (got ${end.code} ${end.reason})`);
});

const modes: Array<[string, WebSocketOptions]> = [
  ['transparent', { closeTimeout: 300 }],
  ['terminating', { closeTimeout: 300, onClientMessage: () => undefined }],
];

for (const [mode, options] of modes) {
  test(`${mode}: the upstream closes, the client never answers: both connections are gone within closeTimeout (+ margin)`, async () => {
    const upstream = await startRawUpstream((socket, key) => {
    socket.write(switchingProtocols(key));
      // Close with 1000 after a moment, then keep the connection open and ignore whatever comes.
      setTimeout(() => socket.write(closeFrame(1000)), 100);
      socket.resume();
    });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
    const client = await rawHandshake(gateway.port, '/deaf');
    await waitFor(() => upstream.sockets.size === 1, 2_000);
    const gone = await waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, 4_000);
    const left = `client connections ${gateway.sockets.size}, upstream connections ${upstream.sockets.size}`;
    client.destroy();
    await gateway.close();
    await upstream.close();
    assert.ok(gone, `a peer that never answers the close is disconnected after closeTimeout 300 ms; 4 s later: ${left}`);
  });
}

test('a hook that closes with a long reason (over 123 bytes): both sides get 1008, nothing is thrown out of the relay', async () => {
  const thrown: Error[] = [];
  const onUncaught = (error: Error) => thrown.push(error);
  process.on('uncaughtException', onUncaught);
  const upstream = await startWsUpstream({ onConnection: () => {} });
  const reason = `message rejected by moderation: ${'the message contained words on the list of banned words; '.repeat(3)}`;
  const gateway = await startGateway({
    targetBaseUrl: upstream.url,
    // idleTimeout 0: the session this defect strands would otherwise keep its idle timer (and the process) alive.
    websocket: websocket({ onClientMessage: () => ({ close: reason }), closeTimeout: 500, idleTimeout: 0 }),
    logger: memoryLogger(),
  });
  const peerReady = nextPeer(upstream);
  const client = await openClient(`${gateway.url}/room`);
  const peer = await peerReady;
  const clientEnd = closed(client);
  const peerEnd = closed(peer);
  client.send('hello');
  const ends = await Promise.race([Promise.all([clientEnd, peerEnd]), delay(3_000).then(() => null)]);
  client.terminate();
  peer.terminate();
  // Bounded: shutdown() has to finish on its own, within closeTimeout + 1 s by design.
  const shutDown = await Promise.race([gateway.relay.shutdown({ timeout: 500 }).then(() => true), delay(5_000).then(() => false)]);
  for (const socket of gateway.sockets) socket.destroy();
  await new Promise<void>((resolve) => gateway.server.close(() => resolve()));
  await upstream.close();
  process.removeListener('uncaughtException', onUncaught);
  assert.equal(thrown.map((error) => error.message), [], 'nothing escapes the relay as an uncaught exception');
  assert.ok(shutDown, 'relay.shutdown() finishes afterwards');
  assert.ok(ends !== null, 'both sides are closed');
  assert.is(ends![0].code, 1008);
  assert.is(ends![1].code, 1008);
});

test.run();
