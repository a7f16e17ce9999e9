// webSocketCounts(): the messages a session relayed each way, in both modes, read live and at the end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ClientInfo, Stage } from '@relay/core';
import { waitFor } from '@relay/testkit';
import { webSocketCounts, websocket, type WebSocketOptions } from '../src/index.js';
import { closed, inbox, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

const passThrough = (): undefined => undefined;
const dropSecrets = (message: { data: Buffer }): 'drop' | undefined => (String(message.data) === 'secret' ? 'drop' : undefined);
const modes: Array<[string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: passThrough, onUpstreamMessage: passThrough }],
];

/** A stage that keeps each request's client, to read its counts. */
function keepClients(clients: ClientInfo[]): Stage {
  return { name: 'keep', wrap: (next) => (request) => (clients.push(request.client), next(request)) };
}

for (const [mode, options] of modes) {
  test(`${mode}: messages both ways are counted, fragmented ones once, pings not at all`, async () => {
    // The upstream answers each message with two.
    const upstream = await startWsUpstream({
      onConnection: (ws) => {
        ws.on('message', (data, isBinary) => {
          ws.send(data as Buffer, { binary: isBinary });
          ws.send('ack');
        });
      },
    });
    const clients: ClientInfo[] = [];
    const gateway = await startGateway({ targetBaseUrl: upstream.url, stages: [keepClients(clients)], websocket: websocket(options) });
    const client = await openClient(`${gateway.url}/chat`);
    const box = inbox(client);
    const sent = 5;
    for (let i = 0; i < sent; i++) {
      client.send(`message ${i}`);
      await box.next();
      await box.next();
    }
    // A message in three fragments, and a ping between messages.
    client.send('frag', { fin: false });
    client.send('ment', { fin: false });
    client.send('ed', { fin: true });
    client.ping();
    assert.is(String((await box.next()).data), 'fragmented');
    await box.next();
    const counts = webSocketCounts(clients[0]!)!;
    assert.ok(counts !== undefined, 'the session has counts');
    // Live: read while the session is open.
    assert.is(counts.clientMessages, sent + 1);
    assert.is(counts.upstreamMessages, 2 * (sent + 1));
    client.close(1000);
    await closed(client);
    assert.ok(await noSocketsLeft(gateway, upstream));
    assert.equal({ clientMessages: counts.clientMessages, upstreamMessages: counts.upstreamMessages }, { clientMessages: 6, upstreamMessages: 12 });
    await gateway.close();
    await upstream.close();
  });
}

test('terminating: a message the policy drops is not counted as relayed', async () => {
  const upstream = await startWsUpstream();
  const clients: ClientInfo[] = [];
  const gateway = await startGateway({ targetBaseUrl: upstream.url, stages: [keepClients(clients)], websocket: websocket({ onClientMessage: dropSecrets }) });
  const client = await openClient(`${gateway.url}/`);
  const box = inbox(client);
  client.send('secret');
  client.send('public');
  assert.is(String((await box.next()).data), 'public');
  const counts = webSocketCounts(clients[0]!)!;
  assert.ok(await waitFor(() => counts.upstreamMessages === 1));
  assert.is(counts.clientMessages, 1);
  client.close(1000);
  await closed(client);
  await gateway.close();
  await upstream.close();
});

test('a plain HTTP request and a refused handshake have no counts', async () => {
  const upstream = await startWsUpstream({ verifyClient: () => false });
  const clients: ClientInfo[] = [];
  const gateway = await startGateway({ targetBaseUrl: upstream.url, stages: [keepClients(clients)], websocket: websocket() });
  await openClient(`${gateway.url}/`).then(
    () => assert.unreachable('the upstream refuses'),
    () => {},
  );
  assert.is(clients.length, 1);
  assert.is(webSocketCounts(clients[0]!), undefined);
  await gateway.close();
  await upstream.close();
});

test.run();
