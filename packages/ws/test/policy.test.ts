// Issue 16: the message-level policy of a terminating session: hooks per direction (inspect,
// rewrite, drop, close with 1008), per-direction and per-session size and rate limits, and a
// deadline set at the handshake.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketMessage, type WebSocketOptions } from '../src/index.js';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

async function setup(options: WebSocketOptions) {
  const upstream = await startWsUpstream({ onConnection: () => {} });
  const logger = memoryLogger();
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger });
  const peerReady = nextPeer(upstream);
  const client = await openClient(`${gateway.url}/room?token=abc`);
  const peer = await peerReady;
  return { upstream, gateway, logger, client, peer };
}

async function teardown({ upstream, gateway }: Awaited<ReturnType<typeof setup>>): Promise<void> {
  assert.ok(await noSocketsLeft(gateway, upstream), 'no socket left');
  await gateway.close();
  await upstream.close();
}

test('hooks see every message with its direction and path; a hook rewrites, or drops, each way', async () => {
  const seen: string[] = [];
  const env = await setup({
    onClientMessage: (message, context) => {
      seen.push(`${context.from} ${context.path} ${message.isBinary ? 'binary' : 'text'} ${message.data.toString()}`);
      if (message.data.toString() === 'drop me') return 'drop';
      return { data: message.data.toString().toUpperCase() };
    },
    onUpstreamMessage: (message) => (message.isBinary ? { data: Buffer.from([9, 9]), isBinary: true } : undefined),
  });
  const toUpstream = inbox(env.peer);
  const toClient = inbox(env.client);
  env.client.send('hello');
  env.client.send('drop me');
  env.client.send('world');
  assert.equal((await toUpstream.next()).data.toString(), 'HELLO');
  const second = await toUpstream.next();
  assert.is(second.data.toString(), 'WORLD', 'the dropped message never reached the upstream');
  assert.is(second.isBinary, false, 'a string rewrite is text');
  env.peer.send(Buffer.from([1, 2, 3]), { binary: true });
  env.peer.send('as sent');
  const rewritten = await toClient.next();
  assert.equal([...rewritten.data], [9, 9]);
  assert.is((await toClient.next()).data.toString(), 'as sent', 'undefined passes the message as it is');
  assert.equal(seen, ['client /room?token=abc text hello', 'client /room?token=abc text drop me', 'client /room?token=abc text world']);
  env.client.close(1000);
  await closed(env.client);
  await teardown(env);
});

test('a hook that returns { close } closes both sides with 1008 and that reason, and logs it', async () => {
  const env = await setup({ onClientMessage: (message: WebSocketMessage) => (message.data.includes('forbidden') ? { close: 'forbidden word' } : undefined) });
  const clientEnd = closed(env.client);
  const peerEnd = closed(env.peer);
  const toUpstream = inbox(env.peer);
  env.client.send('fine');
  assert.is((await toUpstream.next()).data.toString(), 'fine');
  env.client.send('a forbidden thing');
  assert.equal(await clientEnd, { code: 1008, reason: 'forbidden word' });
  assert.equal(await peerEnd, { code: 1008, reason: 'forbidden word' });
  assert.is(toUpstream.all.length, 1, 'the offending message was not sent');
  assert.ok(await waitFor(() => env.logger.lines.some((line) => line.message.includes('policy: forbidden word'))));
  await teardown(env);
});

test('a hook that throws: both sides get 1011, the error is logged, the relay keeps serving', async () => {
  const env = await setup({
    onUpstreamMessage: () => {
      throw new Error('hook bug');
    },
  });
  const clientEnd = closed(env.client);
  env.peer.send('x');
  assert.is((await clientEnd).code, 1011);
  assert.ok(await waitFor(() => env.logger.lines.some((line) => line.level === 'error' && line.fields.error === 'hook bug')));
  await teardown(env);
});

test('limits: a message over the direction’s maxMessageBytes closes both sides with 1009; one at the limit passes', async () => {
  const env = await setup({ limits: { client: { maxMessageBytes: 1000 } } });
  const toUpstream = inbox(env.peer);
  const clientEnd = closed(env.client);
  env.peer.send(Buffer.alloc(5000)); // the upstream's direction has no limit
  env.client.send(Buffer.alloc(1000));
  assert.is((await toUpstream.next()).data.length, 1000);
  env.client.send(Buffer.alloc(1001));
  assert.equal(await clientEnd, { code: 1009, reason: 'message too big' });
  await teardown(env);
});

test('limits: a direction over messagesPerSecond (after its burst) is closed with 1008', async () => {
  const env = await setup({ limits: { upstream: { messagesPerSecond: 5, burst: 10 } } });
  const toClient = inbox(env.client);
  const clientEnd = closed(env.client);
  for (let i = 0; i < 40; i++) env.peer.send(`m${i}`);
  assert.equal(await clientEnd, { code: 1008, reason: 'message rate exceeded' });
  assert.ok(toClient.all.length >= 10 && toClient.all.length < 40, `the burst passed, the flood did not (${toClient.all.length})`);
  await teardown(env);
});

test('limits: the session limit counts both directions together', async () => {
  const env = await setup({ limits: { session: { messagesPerSecond: 1, burst: 4 } } });
  const clientEnd = closed(env.client);
  const toUpstream = inbox(env.peer);
  env.client.send('1');
  env.client.send('2');
  await toUpstream.next();
  await toUpstream.next();
  env.peer.send('3');
  env.peer.send('4');
  env.peer.send('5');
  env.peer.send('6');
  assert.equal(await clientEnd, { code: 1008, reason: 'message rate exceeded' });
  await teardown(env);
});

test('deadline: set at the handshake from the request (an expiring token), the session is closed with 1008 when it passes', async () => {
  const seenPaths: string[] = [];
  const started = Date.now();
  const env = await setup({
    deadline: (request) => {
      seenPaths.push(request.path);
      return new Date(started + 800);
    },
  });
  const clientEnd = closed(env.client);
  const peerEnd = closed(env.peer);
  const toUpstream = inbox(env.peer);
  env.client.send('still valid');
  assert.is((await toUpstream.next()).data.toString(), 'still valid');
  assert.equal(await clientEnd, { code: 1008, reason: 'session expired' });
  assert.equal(await peerEnd, { code: 1008, reason: 'session expired' });
  const took = Date.now() - started;
  assert.ok(took >= 600 && took < 10_000, `closed after ${took} ms`);
  assert.equal(seenPaths, ['/room?token=abc']);
  await teardown(env);
});

test('policy options are checked when websocket() is called', () => {
  assert.throws(() => websocket({ onClientMessage: 'no' as never }), (error: Error) => error instanceof TypeError && /onClientMessage/.test(error.message));
  assert.throws(() => websocket({ limits: { clients: {} } as never }), (error: Error) => error instanceof TypeError && /^websocket: limits: unknown option "clients" \(did you mean "client"\?/.test(error.message));
  assert.throws(() => websocket({ limits: { client: { maxBytes: 1 } } as never }), (error: Error) => error instanceof TypeError && /^websocket: limits\.client: unknown option "maxBytes" \(expected one of maxMessageBytes, messagesPerSecond, burst\)/.test(error.message));
  assert.throws(() => websocket({ limits: { client: { messagesPerSecond: -1 } } }), (error: Error) => error instanceof RangeError && /messagesPerSecond/.test(error.message));
  assert.throws(() => websocket({ maxFragments: 1.5 }), (error: Error) => error instanceof RangeError && /maxFragments/.test(error.message));
  assert.throws(() => websocket({ deadline: 5 as never }), (error: Error) => error instanceof TypeError && /deadline/.test(error.message));
});

test.run();
