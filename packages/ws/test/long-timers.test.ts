// Timers longer than node's limit (2^31 - 1 ms, about 24.8 days): node fires a longer setTimeout after
// 1 ms with a TimeoutOverflowWarning. A deadline 30 days away and a long idleTimeout are reached
// through several timers that each check the clock; closeTimeout, which `ws` arms itself, is limited.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { waitFor } from '@relay/testkit';
import type { WebSocket } from 'ws';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { maxTimerDelay } from '@relay/core/transport';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

const thirtyDays = 30 * 24 * 60 * 60_000;

/** Collects the TimeoutOverflowWarnings node emits from now on. */
function overflowWarnings(): { count(): number; stop(): void } {
  let count = 0;
  const listener = (warning: Error): void => {
    if (warning.name === 'TimeoutOverflowWarning') count++;
  };
  process.on('warning', listener);
  return { count: () => count, stop: () => process.off('warning', listener) };
}

/** The client's message comes back through the relay and the echo upstream: the session works. */
async function roundTrip(client: WebSocket, text: string): Promise<string> {
  const replies = inbox(client);
  client.send(text);
  return (await replies.next()).data.toString();
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

test('closeTimeout above node timer limit is a RangeError naming the option and the maximum; the limit itself is accepted', () => {
  for (const closeTimeout of [maxTimerDelay + 1, thirtyDays]) {
    assert.throws(
      () => websocket({ closeTimeout }),
      (error: Error) => error instanceof RangeError && error.message === `closeTimeout must be at most 2147483647 ms (about 24.8 days, node's timer limit), got ${closeTimeout}`,
      String(closeTimeout),
    );
  }
  assert.is(websocket({ closeTimeout: maxTimerDelay }).name, 'websocket');
  // Longer than a node timer, and fine: these are reached through several timers.
  assert.is(websocket({ idleTimeout: thirtyDays }).name, 'websocket');
  assert.throws(() => websocket({ idleTimeout: Infinity }), (error: Error) => error instanceof RangeError && /idleTimeout/.test(error.message));
});

const modes = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
] as const;

/**
 * Opens a session through a relay with these options, holds it for a while and checks that it still
 * relays both ways, that nothing overflowed, and that it closes normally.
 */
async function holdSession(options: WebSocketOptions, timeout?: { connect: number; read: number }): Promise<void> {
  const warnings = overflowWarnings();
  const upstream = await startWsUpstream();
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), ...(timeout === undefined ? {} : { timeout }) });
  try {
    const peerReady = nextPeer(upstream);
    const client = await openClient(`${gateway.url}/long`);
    const peer = await peerReady;
    assert.is(await roundTrip(client, 'first'), 'first');
    await sleep(300);
    assert.is(client.readyState, client.OPEN, 'the client is still connected');
    assert.is(peer.readyState, peer.OPEN, 'the upstream is still connected');
    assert.is(await roundTrip(client, 'later'), 'later');
    assert.is(warnings.count(), 0, 'no TimeoutOverflowWarning: no timer was given more than node takes');
    const clientEnd = closed(client);
    client.close(1000, 'done');
    assert.equal(await clientEnd, { code: 1000, reason: 'done' });
    assert.ok(await noSocketsLeft(gateway, upstream), 'no socket left');
  } finally {
    warnings.stop();
    await gateway.close();
    await upstream.close();
  }
}

for (const [mode, policy] of modes) {
  test(`${mode}: an idleTimeout of 30 days keeps the session open, with no timer overflowing (node would fire it every 1 ms)`, async () => {
    await holdSession({ idleTimeout: thirtyDays, ...policy });
  });

  // Longer ones are refused by createRelay (core's timer-limit test): node would fire them after 1 ms.
  test(`${mode}: the relay's connect and read timeouts at node's timer limit do not fail the handshake`, async () => {
    await holdSession({ ...policy }, { connect: maxTimerDelay, read: maxTimerDelay });
  });
}

test('terminating: a deadline 30 days away outlives a timer at node limit, and still ends the session once the clock passes it', async () => {
  // The clock is the test's: timers at node's limit fire after 20 ms (as if 24.8 days had passed), and
  // Date.now() can jump ahead. The sockets are real.
  const realSetTimeout = globalThis.setTimeout;
  const realNow = Date.now;
  let shift = 0;
  globalThis.setTimeout = ((callback: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) =>
    realSetTimeout(callback, delay !== undefined && delay >= maxTimerDelay ? 20 : delay, ...args)) as typeof setTimeout;
  Date.now = () => realNow() + shift;
  const upstream = await startWsUpstream();
  const started = Date.now();
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ deadline: () => started + thirtyDays }) });
  try {
    const peerReady = nextPeer(upstream);
    const client = await openClient(`${gateway.url}/token`);
    const peer = await peerReady;
    const clientEnd = closed(client);
    const peerEnd = closed(peer);
    await sleep(300);
    assert.is(client.readyState, client.OPEN, 'not expired: the deadline is 30 days away');
    assert.is(await roundTrip(client, 'still valid'), 'still valid');
    shift = thirtyDays + 60_000;
    assert.equal(await clientEnd, { code: 1008, reason: 'session expired' });
    assert.equal(await peerEnd, { code: 1008, reason: 'session expired' });
    assert.ok(await waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, 10_000), 'no socket left');
  } finally {
    globalThis.setTimeout = realSetTimeout;
    Date.now = realNow;
    await gateway.close();
    await upstream.close();
  }
});

test.run();
