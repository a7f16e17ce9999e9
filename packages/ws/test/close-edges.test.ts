// Close codes, lost sides and shutdown in both session modes (close.test.ts covers transparent).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

const modes: Array<[string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined, onUpstreamMessage: () => undefined }],
];

async function setup(options: WebSocketOptions) {
  const upstream = await startWsUpstream();
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options), logger: memoryLogger() });
  const peerReady = nextPeer(upstream);
  const client = await openClient(`${gateway.url}/room`);
  const peer = await peerReady;
  return { upstream, gateway, client, peer };
}

async function teardown(env: Awaited<ReturnType<typeof setup>>): Promise<void> {
  assert.ok(await noSocketsLeft(env.gateway, env.upstream), 'no socket left');
  await env.gateway.close();
  await env.upstream.close();
}

for (const [mode, options] of modes) {
  for (const [code, reason] of [[1000, 'done'], [1001, 'server restarting'], [4401, 'token revoked'], [3000, 'x'.repeat(123)]] as const) {
    test(`${mode}: the upstream closes with ${code}: the client gets ${code} and the reason; and the other way round`, async () => {
      const env = await setup(options);
      const clientEnd = closed(env.client);
      env.peer.close(code, reason);
      assert.equal(await clientEnd, { code, reason });
      await teardown(env);
      const env2 = await setup(options);
      const peerEnd = closed(env2.peer);
      env2.client.close(code, reason);
      assert.equal(await peerEnd, { code, reason });
      await teardown(env2);
    });
  }

  test(`${mode}: an upstream that dies mid-session: the client gets 1011 within a second`, async () => {
    const env = await setup(options);
    const box = inbox(env.client);
    env.client.send('hi');
    await box.next();
    const started = Date.now();
    const clientEnd = closed(env.client);
    env.peer.terminate();
    const end = await clientEnd;
    assert.is(end.code, 1011);
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
    await teardown(env);
  });

  test(`${mode}: a client that dies mid-session: the upstream gets 1001 within a second`, async () => {
    const env = await setup(options);
    const started = Date.now();
    const peerEnd = closed(env.peer);
    env.client.terminate();
    assert.is((await peerEnd).code, 1001);
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
    await teardown(env);
  });

  test(`${mode}: shutdown() with an open session: 1001 both sides, done within the close timeout`, async () => {
    const env = await setup({ ...options, closeTimeout: 2_000 });
    const clientEnd = closed(env.client);
    const peerEnd = closed(env.peer);
    const started = Date.now();
    await env.gateway.relay.shutdown({ timeout: 500 });
    assert.ok(Date.now() - started < 3_500, `shutdown took ${Date.now() - started} ms`);
    assert.equal(await clientEnd, { code: 1001, reason: 'relay shutting down' });
    assert.equal(await peerEnd, { code: 1001, reason: 'relay shutting down' });
    await teardown(env);
  });

  test(`${mode}: pings alone keep a session past idleTimeout, silence ends it with 1001 both sides`, async () => {
    const env = await setup({ ...options, idleTimeout: 400 });
    const timer = setInterval(() => env.peer.ping(), 100);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    clearInterval(timer);
    assert.is(env.client.readyState, env.client.OPEN, 'still open after 1 s of pings');
    const clientEnd = closed(env.client);
    const peerEnd = closed(env.peer);
    assert.ok(await waitFor(() => env.client.readyState === env.client.CLOSED, 3_000));
    assert.equal(await clientEnd, { code: 1001, reason: 'idle timeout' });
    assert.is((await peerEnd).code, 1001);
    await teardown(env);
  });
}

test.run();
