import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { memoryLogger, waitFor, type MemoryLogger } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, refusedHandshake, startGateway, startWsUpstream, type Gateway, type WsUpstream } from './helpers.js';

/** A fresh upstream and relay per test, so logs and socket counts belong to one session. */
async function setup(options: WebSocketOptions = {}, upstreamOptions: Parameters<typeof startWsUpstream>[0] = {}) {
  const upstream = await startWsUpstream(upstreamOptions);
  const logger = memoryLogger();
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger });
  return { upstream, gateway, logger };
}

/** Opens a client and returns it with the upstream side of its session. */
async function session(upstream: WsUpstream, gateway: Gateway, path = '/') {
  const peerReady = nextPeer(upstream);
  const client = await openClient(`${gateway.url}${path}`);
  return { client, peer: await peerReady };
}

async function teardown(gateway: Gateway, upstream: WsUpstream): Promise<void> {
  assert.ok(await noSocketsLeft(gateway, upstream), 'no socket left open on either server');
  await gateway.close();
  await upstream.close();
}

const sessionLines = (logger: MemoryLogger) => logger.lines.filter((line) => line.message.startsWith('websocket session'));

test('an upstream close with 4000 and a reason reaches the client as 4000 and that reason', async () => {
  const { upstream, gateway, logger } = await setup();
  const { client, peer } = await session(upstream, gateway);
  const clientEnd = closed(client);
  const peerEnd = closed(peer);
  peer.close(4000, 'room closed');
  assert.equal(await clientEnd, { code: 4000, reason: 'room closed' });
  assert.is((await peerEnd).code, 4000, 'the client’s answer went back to the upstream');
  await waitFor(() => sessionLines(logger).length === 1);
  const [line] = sessionLines(logger);
  assert.is(line!.level, 'debug', 'a clean close is not a failure');
  assert.is(line!.fields.upstreamCode, 4000);
  await teardown(gateway, upstream);
});

test('a client close with a code and a reason reaches the upstream', async () => {
  const { upstream, gateway } = await setup();
  const { client, peer } = await session(upstream, gateway);
  const peerEnd = closed(peer);
  const clientEnd = closed(client);
  client.close(4001, 'bye now');
  assert.equal(await peerEnd, { code: 4001, reason: 'bye now' });
  assert.is((await clientEnd).code, 4001, 'the upstream’s answer went back to the client');
  await teardown(gateway, upstream);
});

test('a close frame without a code (1005): passed on as it is when transparent, as 1000 when terminating, both ways', async () => {
  // A terminating relay cannot send a close frame without a code through ws; a transparent one passes the frame itself.
  for (const [options, code] of [[{}, 1005], [{ onClientMessage: () => undefined }, 1000]] as const) {
    const { upstream, gateway } = await setup(options);
    const first = await session(upstream, gateway);
    const peerEnd = closed(first.peer);
    first.client.close();
    assert.equal(await peerEnd, { code, reason: '' });
    const second = await session(upstream, gateway);
    const clientEnd = closed(second.client);
    second.peer.close();
    assert.equal(await clientEnd, { code, reason: '' });
    await teardown(gateway, upstream);
  }
});

test('an upstream that vanishes mid-session: the client gets 1011 with a short, address-free reason, and a warn line', async () => {
  const { upstream, gateway, logger } = await setup();
  const { client, peer } = await session(upstream, gateway, '/room?id=1');
  const clientEnd = closed(client);
  peer.terminate();
  const end = await clientEnd;
  assert.is(end.code, 1011);
  assert.is(end.reason, 'upstream connection lost');
  await waitFor(() => sessionLines(logger).length === 1);
  const [line] = sessionLines(logger);
  assert.is(line!.level, 'warn');
  assert.match(line!.message, /failed: upstream connection lost/);
  assert.is(line!.fields.path, '/room', 'the query is not logged (logQuery: false by default)');
  assert.is(line!.fields.upstreamCode, 1006);
  await teardown(gateway, upstream);
});

test('a client that vanishes mid-session: the upstream gets 1001, and a warn line', async () => {
  const { upstream, gateway, logger } = await setup();
  const { client, peer } = await session(upstream, gateway);
  const peerEnd = closed(peer);
  client.terminate();
  assert.equal(await peerEnd, { code: 1001, reason: 'client connection lost' });
  await waitFor(() => sessionLines(logger).length === 1);
  assert.is(sessionLines(logger)[0]!.level, 'warn');
  assert.match(sessionLines(logger)[0]!.message, /client connection lost/);
  await teardown(gateway, upstream);
});

test('maxPayload: a bigger message closes both sides with 1009 and is logged; a message at the limit passes', async () => {
  const { upstream, gateway, logger } = await setup({ maxPayload: 4096 });
  const { client, peer } = await session(upstream, gateway);
  const box = inbox(client);
  client.send(Buffer.alloc(4096, 1));
  assert.is((await box.next()).data.length, 4096);
  const clientEnd = closed(client);
  const peerEnd = closed(peer);
  client.send(Buffer.alloc(4097, 1));
  assert.is((await clientEnd).code, 1009);
  assert.equal(await peerEnd, { code: 1009, reason: 'message too big' });
  await waitFor(() => sessionLines(logger).length === 1);
  const [line] = sessionLines(logger);
  assert.is(line!.level, 'warn');
  assert.is(line!.fields.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
  // The other direction too.
  const second = await session(upstream, gateway);
  const secondEnd = closed(second.client);
  second.peer.send(Buffer.alloc(5000));
  assert.equal(await secondEnd, { code: 1009, reason: 'message too big' });
  await teardown(gateway, upstream);
});

test('idleTimeout: traffic keeps a session open; silence closes both sides with 1001 and an info line', async () => {
  const { upstream, gateway, logger } = await setup({ idleTimeout: 1000 });
  const { client, peer } = await session(upstream, gateway);
  const box = inbox(client);
  const clientEnd = closed(client);
  const peerEnd = closed(peer);
  for (let index = 0; index < 8; index++) {
    client.send(`tick ${index}`);
    await box.next();
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.is(client.readyState, WebSocket.OPEN, 'open after 1.6 s of traffic with a 1 s idle timeout');
  const quiet = Date.now();
  assert.equal(await clientEnd, { code: 1001, reason: 'idle timeout' });
  assert.equal(await peerEnd, { code: 1001, reason: 'idle timeout' });
  const waited = Date.now() - quiet;
  assert.ok(waited >= 700 && waited < 8000, `closed after ${waited} ms of silence`);
  await waitFor(() => sessionLines(logger).length === 1);
  assert.is(sessionLines(logger)[0]!.level, 'info');
  await teardown(gateway, upstream);
});

test('an upstream that closes as soon as it accepts: the client is accepted, then gets the upstream’s code', async () => {
  const { upstream, gateway } = await setup({}, { onConnection: (ws) => ws.close(4002, 'go away') });
  const client = new WebSocket(`${gateway.url}/`);
  client.on('error', () => {});
  const opened = new Promise<boolean>((resolve) => {
    client.once('open', () => resolve(true));
    client.once('unexpected-response', () => resolve(false));
  });
  const end = closed(client);
  assert.ok(await opened);
  assert.equal(await end, { code: 4002, reason: 'go away' });
  await teardown(gateway, upstream);
});

test('shutdown() closes every relayed session with 1001 on both sides and waits for them', async () => {
  const { upstream, gateway } = await setup();
  const sessions = await Promise.all([session(upstream, gateway), session(upstream, gateway), session(upstream, gateway)]);
  const ends = sessions.flatMap(({ client, peer }) => [closed(client), closed(peer)]);
  const started = Date.now();
  await gateway.relay.shutdown();
  assert.ok(Date.now() - started < 4000, 'shutdown did not wait for a timeout');
  for (const end of await Promise.all(ends)) assert.equal(end, { code: 1001, reason: 'relay shutting down' });
  assert.is(gateway.relay.state, 'stopped');
  assert.ok(await noSocketsLeft(gateway, upstream));
  await gateway.close();
  await upstream.close();
});

test('shutdown() with a peer that never answers the close: its connection is destroyed after closeTimeout', async () => {
  const { upstream, gateway } = await setup({ closeTimeout: 300 });
  const { client } = await session(upstream, gateway);
  // The client stops reading: it will never see, nor answer, the relay's close frame.
  client.pause();
  const started = Date.now();
  await gateway.relay.shutdown();
  const took = Date.now() - started;
  assert.ok(took >= 250 && took < 5000, `shutdown took ${took} ms`);
  assert.ok(await noSocketsLeft(gateway, upstream));
  client.terminate();
  await gateway.close();
  await upstream.close();
});

test('shutdown() during a handshake: the client gets 503 and the upstream connection is closed', async () => {
  const { upstream, gateway } = await setup({}, { verifyClient: (_info, done) => setTimeout(() => done(true), 300) });
  const refusal = refusedHandshake(`${gateway.url}/`);
  await waitFor(() => upstream.handshakes.length === 1);
  await gateway.relay.shutdown();
  const answer = await refusal;
  assert.is(answer.status, 503);
  assert.match(answer.body, /ERR_SHUTTING_DOWN/);
  assert.ok(await noSocketsLeft(gateway, upstream));
  await gateway.close();
  await upstream.close();
});

test.run();
