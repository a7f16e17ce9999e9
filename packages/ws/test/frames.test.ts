import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { websocket } from '../src/index.js';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, startGateway, startWsUpstream, type Gateway, type WsUpstream } from './helpers.js';

let upstream: WsUpstream;
let gateway: Gateway;

test.before(async () => {
  upstream = await startWsUpstream();
  gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket() });
});

test.after(async () => {
  await gateway.close();
  await upstream.close();
});

test('text stays text and binary stays binary, both ways, in order', async () => {
  const client = await openClient(`${gateway.url}/echo`);
  const box = inbox(client);
  const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe]);
  client.send('héllo ✓');
  client.send(bytes);
  client.send('');
  client.send(Buffer.alloc(0));
  const [text, binary, emptyText, emptyBinary] = [await box.next(), await box.next(), await box.next(), await box.next()];
  assert.is(text.isBinary, false);
  assert.is(text.data.toString('utf8'), 'héllo ✓');
  assert.is(binary.isBinary, true);
  assert.equal(binary.data, bytes);
  assert.is(emptyText.isBinary, false);
  assert.is(emptyText.data.length, 0);
  assert.is(emptyBinary.isBinary, true);
  assert.is(emptyBinary.data.length, 0);
  client.close(1000);
  await closed(client);
});

test('a 1 MiB message arrives intact both ways, binary and text', async () => {
  const client = await openClient(`${gateway.url}/big`);
  const box = inbox(client);
  const binary = randomBytes(1024 * 1024);
  const text = 'x'.repeat(1024 * 1024 - 3) + '✓';
  client.send(binary);
  client.send(text);
  const first = await box.next();
  const second = await box.next();
  assert.is(first.isBinary, true);
  assert.ok(first.data.equals(binary), 'the binary message came back byte for byte');
  assert.is(second.isBinary, false);
  assert.is(second.data.toString('utf8'), text);
  client.close();
  await closed(client);
});

test('a fragmented message reaches the other side whole', async () => {
  const peerReady = nextPeer(upstream);
  const client = await openClient(`${gateway.url}/fragments`);
  const peer = await peerReady;
  const received = new Promise<{ data: Buffer; isBinary: boolean }>((resolve) =>
    peer.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })),
  );
  const parts = [randomBytes(70_000), randomBytes(10), randomBytes(40_000)];
  client.send(parts[0]!, { fin: false, binary: true });
  client.send(parts[1]!, { fin: false, binary: true });
  client.send(parts[2]!, { fin: true, binary: true });
  const message = await received;
  assert.is(message.isBinary, true);
  assert.ok(message.data.equals(Buffer.concat(parts)), 'the three fragments arrive as one 110 KB message');
  client.close();
  await closed(client);
});

test('pings and pongs pass through: the far side answers, and only once', async () => {
  const peerReady = nextPeer(upstream);
  const client = await openClient(`${gateway.url}/ping`);
  const peer = await peerReady;
  const peerPings: string[] = [];
  peer.on('ping', (data) => peerPings.push(data.toString()));
  const clientPongs: string[] = [];
  client.on('pong', (data) => clientPongs.push(data.toString()));
  client.ping('are you there');
  await waitUntil(() => clientPongs.length >= 1);
  assert.equal(peerPings, ['are you there'], 'the upstream received the client’s ping');
  const clientPings: string[] = [];
  client.on('ping', (data) => clientPings.push(data.toString()));
  const peerPongs: string[] = [];
  peer.on('pong', (data) => peerPongs.push(data.toString()));
  peer.ping('heartbeat');
  await waitUntil(() => peerPongs.length >= 1);
  assert.equal(clientPings, ['heartbeat'], 'the client received the upstream’s ping');
  assert.equal(peerPongs, ['heartbeat'], 'the upstream got the client’s own pong');
  // A second pong (made up by the relay) would have arrived by now.
  client.send('sync');
  await inbox(client).next();
  assert.equal(clientPongs, ['are you there'], 'exactly one pong, the upstream’s');
  client.close();
  await closed(client);
});

test('messages the upstream sends as soon as it accepts reach the client first', async () => {
  const greeter = await startWsUpstream({
    onConnection(ws) {
      ws.send('welcome');
      ws.send(Buffer.from([1, 2, 3]));
      ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
    },
  });
  const relay = await startGateway({ targetBaseUrl: greeter.url, websocket: websocket() });
  const client = new WebSocket(`${relay.url}/`);
  const box = inbox(client);
  client.on('open', () => client.send('after'));
  const [first, second, third] = [await box.next(), await box.next(), await box.next()];
  assert.is(first.data.toString(), 'welcome');
  assert.is(first.isBinary, false);
  assert.equal([...second.data], [1, 2, 3]);
  assert.is(second.isBinary, true);
  assert.is(third.data.toString(), 'after');
  client.close();
  await closed(client);
  assert.ok(await noSocketsLeft(relay, greeter));
  await relay.close();
  await greeter.close();
});

test('terminating sessions: permessage-deflate is negotiated with each side on its own and messages still arrive intact', async () => {
  const deflating = await startWsUpstream({ perMessageDeflate: true });
  const relay = await startGateway({ targetBaseUrl: deflating.url, websocket: websocket({ perMessageDeflate: true, onClientMessage: () => undefined }) });
  const client = await openClient(`${relay.url}/`, [], { perMessageDeflate: true });
  assert.match(client.extensions, /permessage-deflate/);
  assert.match(String(deflating.handshakes[0]!.headers['sec-websocket-extensions']), /permessage-deflate/);
  const box = inbox(client);
  const text = 'compressible '.repeat(10_000);
  client.send(text);
  assert.is((await box.next()).data.toString(), text);
  client.close();
  await closed(client);
  await relay.close();
  await deflating.close();
});

test('no socket is left open after the sessions above', async () => {
  assert.ok(await noSocketsLeft(gateway, upstream));
});

async function waitUntil(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

test.run();
