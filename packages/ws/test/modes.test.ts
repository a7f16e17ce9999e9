// Issue 16: what passes in both modes (transparent by default, terminating with a message policy):
// a 64 MiB binary message, a 10 000-fragment message, permessage-deflate negotiated end to end
// when transparent, and a wss: upstream that asks for a client certificate.
import { createHash } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocketServer, type WebSocket } from 'ws';
import { close, listen, memoryLogger, tlsFixture } from '@relay/testkit';
import type { TlsOptions } from '@relay/core';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, refusedHandshake, startGateway, startWsUpstream } from './helpers.js';

const passThrough = (): undefined => undefined;
const modes: Array<[string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating (pass-through hooks)', { onClientMessage: passThrough, onUpstreamMessage: passThrough }],
];
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

for (const [mode, options] of modes) {
  test(`${mode}: a 64 MiB binary message passes both ways`, async () => {
    // The upstream answers each message with its hash, then sends a 64 MiB message of its own.
    const big = Buffer.alloc(64 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const upstream = await startWsUpstream({
      maxPayload: 0,
      onConnection: (ws) =>
        ws.on('message', (data) => {
          ws.send(sha256(data as Buffer));
          ws.send(big, { binary: true });
        }),
    });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    const client = await openClient(`${gateway.url}/big`, [], { maxPayload: 0 });
    const box = inbox(client);
    client.send(big, { binary: true });
    const hash = await box.next();
    assert.is(hash.data.toString(), sha256(big), 'the upstream got the 64 MiB intact');
    const back = await box.next();
    assert.ok(back.isBinary);
    assert.is(back.data.length, big.length);
    assert.is(sha256(back.data), sha256(big), 'the client got the 64 MiB intact');
    client.close(1000);
    await closed(client);
    assert.ok(await noSocketsLeft(gateway, upstream));
    await gateway.close();
    await upstream.close();
  });

  test(`${mode}: a message in 10 000 fragments passes, and the one after it too`, async () => {
    const upstream = await startWsUpstream({ onConnection: (ws) => ws.on('message', (data) => ws.send(sha256(data as Buffer))) });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    const client = await openClient(`${gateway.url}/fragments`);
    const box = inbox(client);
    const parts: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) {
      const part = Buffer.alloc(64, i % 256);
      parts.push(part);
      client.send(part, { binary: true, fin: i === 9_999 });
    }
    assert.is((await box.next()).data.toString(), sha256(Buffer.concat(parts)));
    client.send('after');
    assert.is((await box.next()).data.toString(), sha256(Buffer.from('after')));
    client.close(1000);
    await closed(client);
    await gateway.close();
    await upstream.close();
  });
}

test('transparent: permessage-deflate is negotiated end to end when client and upstream both offer it', async () => {
  const upstream = await startWsUpstream({ perMessageDeflate: true });
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket() });
  const peerReady = nextPeer(upstream);
  const client = await openClient(`${gateway.url}/deflate`, [], { perMessageDeflate: true });
  const peer = await peerReady;
  assert.match(client.extensions, /permessage-deflate/, 'the client has it');
  assert.match(String(upstream.handshakes[0]!.headers['sec-websocket-extensions']), /permessage-deflate/, 'the client’s offer reached the upstream');
  assert.ok(Object.keys((peer as unknown as { _extensions: object })._extensions).includes('permessage-deflate'), 'the upstream accepted it');
  const box = inbox(client);
  const text = 'compressible '.repeat(10_000);
  client.send(text);
  assert.is((await box.next()).data.toString(), text);
  client.close(1000);
  await closed(client);
  await gateway.close();
  await upstream.close();
});

/** A wss upstream that refuses clients without a certificate signed by the fixture. */
async function startMutualTlsUpstream(): Promise<{ url: string; server: Server; sockets: Set<Socket>; wss: WebSocketServer }> {
  const server = createHttpsServer({ ...tlsFixture, requestCert: true, rejectUnauthorized: true, ca: [tlsFixture.cert] }) as unknown as Server;
  const sockets = new Set<Socket>();
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws: WebSocket) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
  const url = (await listen(server)).replace('http:', 'https:');
  return { url, server, sockets, wss };
}

for (const [mode, options] of modes) {
  test(`${mode}: a wss upstream that asks for a client certificate gets the one in tls (cert, key), as HTTP does`, async () => {
    const upstream = await startMutualTlsUpstream();
    const withCert = await startGateway({
      targetBaseUrl: upstream.url,
      tls: { ca: tlsFixture.cert, cert: tlsFixture.cert, key: tlsFixture.key } as TlsOptions,
      websocket: websocket(options),
    });
    const client = await openClient(`${withCert.url}/mtls`);
    const box = inbox(client);
    client.send('over mutual TLS');
    assert.is((await box.next()).data.toString(), 'over mutual TLS');
    client.close(1000);
    await closed(client);
    const logger = memoryLogger();
    const withoutCert = await startGateway({ targetBaseUrl: upstream.url, tls: { ca: tlsFixture.cert }, websocket: websocket(options), logger });
    const refusal = await refusedHandshake(`${withoutCert.url}/mtls`);
    assert.is(refusal.status, 502, 'without the certificate the upstream refuses the TLS handshake');
    await withCert.close();
    await withoutCert.close();
    for (const ws of upstream.wss.clients) ws.terminate();
    await close(upstream.server);
  });
}

test.run();
