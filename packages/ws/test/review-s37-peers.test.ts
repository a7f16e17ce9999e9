// Review s37 (@relay/ws, issue 16): cases ported from the peers' own suites — http-proxy /
// http-proxy-3 (lib-http-proxy-passes-ws-incoming-test.js, the ws examples: headers on the upgrade
// response, X-Forwarded-* on upgrades, changeOrigin/Host), @fastify/http-proxy's websocket tests
// (query kept, refusals with a body) and ws's own server tests (version negotiation), plus frame
// edges with real `ws` peers: control frames between fragments, a 1 MiB message through a small
// highWaterMark. Each case runs in both modes (transparent and terminating).
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { createRelay } from '@relay/core';
import { close, listen, sendRaw, tlsFixture } from '@relay/testkit';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, refusedHandshake, startGateway, startWsUpstream } from './helpers.js';

const modes: ReadonlyArray<readonly [string, WebSocketOptions]> = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
];

function handshakeText(path: string, port: number, version: string): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: ${version}\r\n\r\n`
  );
}

for (const [mode, options] of modes) {
  // RFC 6455 §4.4: a server that does not speak the client's version "MUST ... send an appropriate
  // HTTP error code (such as 426 Upgrade Required) and a |Sec-WebSocket-Version| header field
  // indicating the version(s) the server is capable of understanding". ws itself answers
  // 400 with `Sec-WebSocket-Version: 13, 8` (websocket-server.js handleUpgrade), so a client can retry.
  test(`${mode}: a client offering Sec-WebSocket-Version 12 is refused with a Sec-WebSocket-Version header naming 13 (RFC 6455 §4.4), upstream never contacted`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    try {
      const raw = await sendRaw(gateway.port, handshakeText('/v', gateway.port, '12'));
      const head = raw.split('\r\n\r\n')[0]!;
      assert.ok(/^HTTP\/1\.1 4\d\d /.test(head), head);
      assert.is(upstream.handshakes.length, 0);
      const version = /\r\nsec-websocket-version: *([^\r]*)/i.exec(head);
      assert.ok(version !== null, `no Sec-WebSocket-Version in the refusal:\n${head}`);
      assert.ok(version[1]!.split(',').map((v) => v.trim()).includes('13'), version[1]);
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });

  // http-proxy's changeOrigin defaults to false: the upstream sees the client's Host on an upgrade
  // (http-proxy-3 test/http/proxy-websocket "should keep Host"); Relay's `preserveHost: true` is that option.
  test(`${mode}: preserveHost: true keeps the client's Host on the upstream handshake, X-Forwarded-Host too`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, preserveHost: true, websocket: websocket(options) });
    const client = await openClient(`${gateway.url}/room`, [], { headers: { host: 'chat.example.com' } });
    const seen = upstream.handshakes[0]!;
    assert.is(seen.headers.host, 'chat.example.com');
    assert.is(seen.headers['x-forwarded-host'], 'chat.example.com');
    client.close();
    await closed(client);
    await gateway.close();
    await upstream.close();
  });

  // http-proxy ws-incoming XHeaders: proto is "wss" for an encrypted client connection; nginx's
  // $scheme and Relay's HTTP path say "https". Either way, never "http" for a TLS client.
  test(`${mode}: a wss client through a TLS front: the upstream handshake says X-Forwarded-Proto https (or wss), not http`, async () => {
    const upstream = await startWsUpstream();
    const relay = createRelay({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    await relay.startup();
    const front = createHttpsServer(tlsFixture, relay.handle) as unknown as Server;
    front.on('upgrade', relay.upgrade);
    const base = (await listen(front)).replace(/^https?:/, 'wss:');
    const client = await openClient(`${base}/secure`, [], { rejectUnauthorized: false });
    const proto = upstream.handshakes[0]!.headers['x-forwarded-proto'];
    assert.ok(proto === 'https' || proto === 'wss', String(proto));
    client.close();
    await closed(client);
    await relay.shutdown({ timeout: 1000 });
    await close(front);
    await upstream.close();
  });

  // @fastify/http-proxy test/websocket.js "queryString": the query reaches the upstream as sent.
  test(`${mode}: the handshake's query string reaches the upstream byte for byte (quotes, %zz, repeated keys)`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    const client = await openClient(`${gateway.url}/`, [], {
      finishRequest: (req) => {
        req.path = "/q?a='1'&a=2&b=%zz&c=%7b";
        req.end();
      },
    });
    assert.is(upstream.handshakes[0]!.url, "/q?a='1'&a=2&b=%zz&c=%7b");
    client.close();
    await closed(client);
    await gateway.close();
    await upstream.close();
  });

  // http-proxy ws example "should pass headers on the upgrade response": every Set-Cookie line of the
  // upstream's 101 reaches the client, as separate lines.
  test(`${mode}: two Set-Cookie lines and a custom header on the upstream's 101 reach the client's 101`, async () => {
    const upstream = await startWsUpstream({ headers: ['Set-Cookie: a=1; Path=/', 'Set-Cookie: b=2; HttpOnly', 'X-Upstream: yes'] });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    let seen: Record<string, string | string[] | undefined> = {};
    const client = new WebSocket(`${gateway.url}/c`);
    client.on('upgrade', (res) => (seen = res.headers));
    await new Promise((resolve, reject) => {
      client.once('open', resolve);
      client.once('error', reject);
    });
    assert.equal(seen['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly']);
    assert.is(seen['x-upstream'], 'yes');
    client.close();
    await closed(client);
    await gateway.close();
    await upstream.close();
  });

  // @fastify/http-proxy / http-proxy-3 "upstream refusing the upgrade": a 4xx with a JSON body and
  // its own headers reaches the client as that status, headers and body.
  test(`${mode}: an upstream refusing with 429, Retry-After and a JSON body: the client gets exactly that`, async () => {
    const upstream = await startWsUpstream({
      verifyClient: (_info, done) => done(false, 429, 'Too Many Requests', { 'Retry-After': '7', 'Content-Type': 'application/json' }),
    });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    const refusal = await refusedHandshake(`${gateway.url}/busy`);
    assert.is(refusal.status, 429);
    assert.is(refusal.headers['retry-after'], '7');
    assert.is(refusal.body, 'Too Many Requests');
    await gateway.close();
    await upstream.close();
  });

  // RFC 6455 §5.4/§5.5: control frames may be injected in the middle of a fragmented message.
  // A ping between two fragments reaches the upstream (its pong returns) and the message arrives whole.
  test(`${mode}: a ping between two fragments of a text message: the pong returns, the message arrives whole`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    const peerReady = nextPeer(upstream);
    const client = await openClient(`${gateway.url}/frag`);
    const peer = await peerReady;
    const pings: string[] = [];
    peer.on('ping', (data) => {
      pings.push(data.toString());
      peer.pong(data);
    });
    const pong = new Promise<string>((resolve) => client.once('pong', (data) => resolve(data.toString())));
    const box = inbox(client);
    client.send('first half, ', { fin: false });
    client.ping('mid');
    client.send('second half', { fin: true });
    assert.is(await pong, 'mid');
    const echoed = await box.next();
    assert.is(echoed.data.toString(), 'first half, second half');
    assert.is(echoed.isBinary, false);
    assert.equal(pings, ['mid']);
    client.close(1000, 'done');
    await closed(client);
    await gateway.close();
    await upstream.close();
  });

  // A 1 MiB message through a relay whose highWaterMark (16 KiB) is far below it: backpressure
  // bounds what is queued, it does not cap the message size (issue 16: "messages of any size").
  test(`${mode}: highWaterMark 16 KiB: three 1 MiB binary messages pass both ways intact and in order`, async () => {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ ...options, highWaterMark: 16 * 1024 }) });
    const client = await openClient(`${gateway.url}/big`);
    const box = inbox(client);
    const sent: Buffer[] = [];
    for (let i = 0; i < 3; i++) {
      const message = Buffer.alloc(1024 * 1024, i + 1);
      message.writeUInt32BE(i, 0);
      sent.push(message);
      client.send(message);
    }
    for (let i = 0; i < 3; i++) {
      const got = await box.next();
      assert.is(got.isBinary, true);
      assert.ok(got.data.equals(sent[i]!), `message ${i} differs`);
    }
    client.close();
    await closed(client);
    assert.ok(await noSocketsLeft(gateway, upstream));
    await gateway.close();
    await upstream.close();
  });
}

test.run();
