import { createServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { createRelay, type Stage } from '@relay/core';
import { close, closedPort, listen, memoryLogger, sendRaw, waitFor } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { closed, inbox, nextPeer, noSocketsLeft, openClient, refusedHandshake, startGateway, startWsUpstream } from './helpers.js';

test('the handshake is mapped like HTTP: mount stripped, prefix added, query byte for byte, forwarding headers set', async () => {
  const upstream = await startWsUpstream();
  const gateway = await startGateway({ targetBaseUrl: `${upstream.url}/svc`, upstreamPrefix: '/v1', mountPath: '/ws', websocket: websocket() });
  const client = await openClient(`${gateway.url}/`, [], {
    headers: { cookie: 'sid=abc', authorization: 'Bearer t0k', 'user-agent': 'test-agent/1', 'x-custom': 'yes' },
    origin: 'https://app.example',
    // Sent as is, where a URL parser would have re-encoded the quotes.
    finishRequest: (req) => {
      req.path = "/ws/room/7?q='a'&x=%7B%2F&y=%zz";
      req.end();
    },
  });
  const seen = upstream.handshakes[0]!;
  assert.is(seen.url, "/svc/v1/room/7?q='a'&x=%7B%2F&y=%zz");
  assert.is(seen.headers.cookie, 'sid=abc');
  assert.is(seen.headers.authorization, 'Bearer t0k');
  assert.is(seen.headers.origin, 'https://app.example');
  assert.is(seen.headers['user-agent'], 'test-agent/1');
  assert.is(seen.headers['x-custom'], 'yes');
  assert.is(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.is(seen.headers['x-forwarded-proto'], 'http');
  assert.is(seen.headers['x-forwarded-host'], `127.0.0.1:${gateway.port}`);
  assert.is(seen.headers['x-forwarded-prefix'], '/ws');
  assert.is(seen.headers.host, new URL(upstream.url).host);
  client.close();
  await closed(client);
  await gateway.close();
  await upstream.close();
});

test('relay.dispatchUpgrade: a framework that routed the upgrade itself gets the same relaying', async () => {
  const upstream = await startWsUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/v2', websocket: websocket() });
  await relay.startup();
  const server = createServer();
  server.on('upgrade', (req, socket, head) => {
    // What @relay/connect-adapter does for a relay mounted at /api.
    relay.dispatchUpgrade(req, socket, head, { path: req.url!.slice('/api'.length), mountPath: '/api' });
  });
  const base = await listen(server);
  const client = await openClient(`${base.replace('http:', 'ws:')}/api/feed?x=1`);
  assert.is(upstream.handshakes[0]!.url, '/v2/feed?x=1');
  assert.is(upstream.handshakes[0]!.headers['x-forwarded-prefix'], '/api');
  const box = inbox(client);
  client.send('through the framework');
  assert.is((await box.next()).data.toString(), 'through the framework');
  client.close();
  await closed(client);
  await relay.shutdown();
  await close(server);
  await upstream.close();
});

test('Sec-WebSocket-* headers are not copied blindly: one key, one version; extensions end to end only when transparent', async () => {
  // Transparent: the client's own extension offer goes upstream (the bytes are relayed as they are). Terminating with
  // perMessageDeflate: false: the relay offers the upstream nothing.
  for (const [options, extensionOffers] of [[{}, 1], [{ onClientMessage: () => undefined }, 0]] as const) {
    const upstream = await startWsUpstream();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    const client = await openClient(`${gateway.url}/`, ['chat'], { perMessageDeflate: true });
    const raw = upstream.handshakes[0]!.rawHeaders;
    const count = (name: string) => raw.filter((value, index) => index % 2 === 0 && value.toLowerCase() === name).length;
    assert.is(count('sec-websocket-key'), 1);
    assert.is(count('sec-websocket-version'), 1);
    assert.is(count('sec-websocket-protocol'), 1);
    assert.is(count('sec-websocket-extensions'), extensionOffers);
    assert.is(count('connection'), 1);
    assert.is(count('upgrade'), 1);
    assert.is.not(upstream.handshakes[0]!.headers['sec-websocket-key'], undefined);
    assert.is(client.extensions, '', 'the upstream accepted no extension, so the client has none either');
    client.close();
    await closed(client);
    await gateway.close();
    await upstream.close();
  }
});

test('subprotocols: the client gets the one the upstream chose, from the client’s own offer', async () => {
  const upstream = await startWsUpstream({ handleProtocols: (offered) => (offered.has('v1.chat') ? 'v1.chat' : false) });
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket() });
  const client = await openClient(`${gateway.url}/`, ['v2.chat', 'v1.chat']);
  assert.is(client.protocol, 'v1.chat', 'not the first one offered: the upstream’s choice');
  assert.is(upstream.handshakes[0]!.headers['sec-websocket-protocol'], 'v2.chat,v1.chat');
  assert.is(upstream.peers[0]!.protocol, 'v1.chat');
  const plain = await openClient(`${gateway.url}/`);
  assert.is(plain.protocol, '', 'no offer, no subprotocol');
  assert.is(upstream.handshakes[1]!.headers['sec-websocket-protocol'], undefined);
  client.close();
  plain.close();
  await Promise.all([closed(client), closed(plain)]);
  await gateway.close();
  await upstream.close();
});

test('an upstream that ignores the offered subprotocols fails the handshake with 502, as ws itself would fail it', async () => {
  const upstream = await startWsUpstream({ handleProtocols: () => false });
  const logger = memoryLogger();
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(), logger });
  const refusal = await refusedHandshake(`${gateway.url}/`, ['chat']);
  assert.is(refusal.status, 502);
  assert.match(refusal.body, /ERR_UPSTREAM_PROTOCOL/);
  assert.ok(logger.lines.some((line) => line.fields.code === 'ERR_UPSTREAM_PROTOCOL' && /no subprotocol/.test(String(line.fields.error))));
  assert.ok(await noSocketsLeft(gateway, upstream));
  await gateway.close();
  await upstream.close();
});

test('a header stage dropping a handshake header: the upstream never sees it; a response stage rewrites Set-Cookie on the 101', async () => {
  const upstream = await startWsUpstream({ headers: ['Set-Cookie: sid=1; Domain=upstream.internal; Path=/', 'Set-Cookie: theme=dark', 'X-Upstream: yes'] });
  const seenByStage: string[] = [];
  const headerRules: Stage = {
    name: 'header-rules',
    wrap: (next) =>
      async function headerRules(request) {
        seenByStage.push(String(request.headers.authorization));
        delete request.headers.authorization;
        delete request.headers['x-internal-debug'];
        const response = await next(request);
        response.headers['set-cookie'] = (response.headers['set-cookie'] ?? []).map((cookie) => cookie.replace('; Domain=upstream.internal', ''));
        delete response.headers['x-upstream'];
        response.headers['x-relay'] = 'added';
        return response;
      },
  };
  const gateway = await startGateway({ targetBaseUrl: upstream.url, stages: [headerRules], websocket: websocket() });
  const client = new WebSocket(`${gateway.url}/`, { headers: { authorization: 'Bearer secret', 'x-internal-debug': '1', cookie: 'a=b' } });
  const upgrade = new Promise<import('node:http').IncomingMessage>((resolve) => client.once('upgrade', resolve));
  await new Promise((resolve) => client.once('open', resolve));
  const response = await upgrade;
  assert.equal(seenByStage, ['Bearer secret'], 'the stage saw the handshake');
  const seen = upstream.handshakes[0]!;
  assert.is(seen.headers.authorization, undefined);
  assert.is(seen.headers['x-internal-debug'], undefined);
  assert.is(seen.headers.cookie, 'a=b', 'the rest is forwarded');
  assert.equal(response.headers['set-cookie'], ['sid=1; Path=/', 'theme=dark']);
  assert.is(response.headers['x-upstream'], undefined);
  assert.is(response.headers['x-relay'], 'added');
  client.close();
  await closed(client);
  await gateway.close();
  await upstream.close();
});

test('an upstream 401 on the handshake reaches the client as 401 with its headers and body; 404 likewise', async () => {
  const upstream = await startWsUpstream({
    verifyClient: (info, done) => {
      if (info.req.url === '/private') done(false, 401, 'Unauthorized', { 'WWW-Authenticate': 'Bearer realm="chat"' });
      else if (info.req.url === '/missing') done(false, 404, 'Not Found');
      else done(true);
    },
  });
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket() });
  const unauthorized = await refusedHandshake(`${gateway.url}/private`);
  assert.is(unauthorized.status, 401);
  assert.is(unauthorized.headers['www-authenticate'], 'Bearer realm="chat"');
  assert.is(unauthorized.body, 'Unauthorized');
  const missing = await refusedHandshake(`${gateway.url}/missing`);
  assert.is(missing.status, 404);
  assert.is(missing.body, 'Not Found');
  assert.ok(await noSocketsLeft(gateway, upstream));
  await gateway.close();
  await upstream.close();
});

test('an unreachable upstream: 502 on the handshake, no address in the body, the detail in the log', async () => {
  const port = await closedPort();
  const logger = memoryLogger();
  const gateway = await startGateway({ targetBaseUrl: `http://127.0.0.1:${port}`, websocket: websocket(), logger });
  const refusal = await refusedHandshake(`${gateway.url}/room`);
  assert.is(refusal.status, 502);
  assert.match(refusal.body, /ERR_UPSTREAM_UNREACHABLE/);
  assert.not.match(refusal.body, /127\.0\.0\.1|ECONNREFUSED|\d{4,5}/);
  const line = logger.lines.find((entry) => entry.fields.code === 'ERR_UPSTREAM_UNREACHABLE');
  assert.ok(line, 'a log line names the failure');
  assert.match(String(line!.fields.url), new RegExp(`127\\.0\\.0\\.1:${port}/room`));
  assert.match(String(line!.fields.error), /ECONNREFUSED/);
  // The relay keeps serving.
  assert.is((await refusedHandshake(`${gateway.url}/again`)).status, 502);
  await waitFor(() => gateway.sockets.size === 0);
  assert.is(gateway.sockets.size, 0);
  await gateway.close();
});

test('an upstream that accepts the connection but never answers: 504 after the read timeout', async () => {
  // It reads (and drops) what it gets, so it sees the relay close the connection.
  const silent = createNetServer((socket) => socket.on('error', () => {}).resume());
  const held = new Set<Socket>();
  silent.on('connection', (socket) => {
    held.add(socket);
    socket.on('close', () => held.delete(socket));
  });
  const base = await listen(silent);
  const logger = memoryLogger();
  const gateway = await startGateway({ targetBaseUrl: base, timeout: { read: 300 }, websocket: websocket(), logger });
  const started = Date.now();
  const refusal = await refusedHandshake(`${gateway.url}/slow`);
  assert.is(refusal.status, 504);
  assert.match(refusal.body, /ERR_READ_TIMEOUT/);
  assert.ok(Date.now() - started < 10_000);
  assert.ok(await waitFor(() => held.size === 0), 'the relay closed its upstream connection');
  assert.ok(logger.lines.some((line) => line.fields.code === 'ERR_READ_TIMEOUT' && line.level === 'warn'));
  await gateway.close();
  await new Promise((resolve) => silent.close(resolve));
});

test('a wss upstream whose TLS handshake never completes: 504 after the connect timeout (it covers TLS)', async () => {
  // It reads (and drops) what it gets, so it sees the relay close the connection.
  const silent = createNetServer((socket) => socket.on('error', () => {}).resume());
  const held = new Set<Socket>();
  silent.on('connection', (socket) => {
    held.add(socket);
    socket.on('close', () => held.delete(socket));
  });
  const base = await listen(silent);
  const gateway = await startGateway({ targetBaseUrl: base.replace('http:', 'https:'), timeout: { connect: 300 }, websocket: websocket() });
  const refusal = await refusedHandshake(`${gateway.url}/`);
  assert.is(refusal.status, 504);
  assert.match(refusal.body, /ERR_CONNECT_TIMEOUT/);
  assert.ok(await waitFor(() => held.size === 0), 'the relay closed its upstream connection');
  await gateway.close();
  await new Promise((resolve) => silent.close(resolve));
});

test('a wss upstream: the scheme follows targetBaseUrl, the certificate is verified against tls.ca', async () => {
  const upstream = await startWsUpstream({ tls: true });
  const { tlsFixture } = await import('@relay/testkit');
  const gateway = await startGateway({ targetBaseUrl: upstream.url.replace('127.0.0.1', 'localhost'), tls: { ca: tlsFixture.cert }, websocket: websocket() });
  const client = await openClient(`${gateway.url}/secure`);
  const box = inbox(client);
  client.send('over tls');
  assert.is((await box.next()).data.toString(), 'over tls');
  client.close();
  await closed(client);
  const untrusted = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket() });
  const refusal = await refusedHandshake(`${untrusted.url}/`);
  assert.is(refusal.status, 502);
  assert.match(refusal.body, /ERR_UPSTREAM_TLS/);
  await untrusted.close();
  await gateway.close();
  await upstream.close();
});

/** A raw client handshake, for what a `ws` client would refuse to send. */
const rawHandshake = (path: string, extra = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n') =>
  `GET ${path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${extra}\r\n`;

test('an invalid client handshake gets 400 before any upstream connection is opened', async () => {
  const upstream = await startWsUpstream();
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket() });
  const handshake = (extra: string) => rawHandshake('/room', extra);
  const badKey = await sendRaw(gateway.port, handshake('Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n'));
  assert.match(badKey, /^HTTP\/1.1 400 /);
  assert.match(badKey, /ERR_BAD_HANDSHAKE/);
  const badVersion = await sendRaw(gateway.port, handshake('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n'));
  assert.match(badVersion, /^HTTP\/1.1 400 /);
  const badProtocol = await sendRaw(
    gateway.port,
    handshake('Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, chat\r\n'),
  );
  assert.match(badProtocol, /^HTTP\/1.1 400 /);
  // An upgrade to anything but WebSocket (h2c) is no handshake: it is served as a plain request (review-hostile.test.ts).
  const notWebSocket = await sendRaw(gateway.port, 'GET /room HTTP/1.1\r\nHost: gw\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n');
  assert.not.match(notWebSocket, /ERR_BAD_HANDSHAKE/);
  assert.is(upstream.handshakes.length, 0, 'the upstream was never contacted');
  await gateway.close();
  await upstream.close();
});

test('a client that leaves during the handshake: the upstream connection is closed, nothing leaks', async () => {
  const upstream = await startWsUpstream({
    verifyClient: (_info, done) => setTimeout(() => done(true), 300),
  });
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket() });
  const client = new WebSocket(`${gateway.url}/`);
  client.on('error', () => {});
  await waitFor(() => upstream.handshakes.length === 1);
  client.terminate();
  assert.ok(await noSocketsLeft(gateway, upstream), 'both sides closed');
  await gateway.close();
  await upstream.close();
});

test('a stage that answers 403 instead of the upstream’s 101: the client gets 403, the upstream session is closed', async () => {
  const upstream = await startWsUpstream();
  const deny: Stage = {
    name: 'deny',
    wrap: (next) =>
      async function deny(request) {
        await next(request);
        return { status: 403, statusMessage: '', headers: { 'content-type': 'text/plain' }, body: Readable.from(['forbidden']) };
      },
  };
  const peerReady = nextPeer(upstream);
  const gateway = await startGateway({ targetBaseUrl: upstream.url, stages: [deny], websocket: websocket() });
  const refusal = await refusedHandshake(`${gateway.url}/`);
  assert.is(refusal.status, 403);
  assert.is(refusal.body, 'forbidden');
  const peer = await peerReady;
  const end = await closed(peer);
  assert.is(end.code, 1001);
  assert.ok(await noSocketsLeft(gateway, upstream));
  await gateway.close();
  await upstream.close();
});

test('a stage offering a subprotocol the client did not: 502, never a 101 the client would reject', async () => {
  const upstream = await startWsUpstream({ handleProtocols: (offered) => (offered.has('admin') ? 'admin' : false) });
  const addProtocol: Stage = {
    name: 'add-protocol',
    wrap: (next) =>
      function addProtocol(request) {
        request.headers['sec-websocket-protocol'] = 'admin, chat';
        return next(request);
      },
  };
  const gateway = await startGateway({ targetBaseUrl: upstream.url, stages: [addProtocol], websocket: websocket() });
  const refusal = await refusedHandshake(`${gateway.url}/`, ['chat']);
  assert.is(refusal.status, 502);
  assert.match(refusal.body, /ERR_UPSTREAM_PROTOCOL/);
  assert.ok(await noSocketsLeft(gateway, upstream));
  await gateway.close();
  await upstream.close();
});

test('an upstream refusal whose body stalls: the read timeout drops it, and a client that leaves frees the upstream at once', async () => {
  const stalling = createServer();
  const held = new Set<Socket>();
  stalling.on('connection', (socket) => {
    held.add(socket);
    socket.on('close', () => held.delete(socket));
  });
  stalling.on('upgrade', (_req, socket: Socket) => {
    // Reading, so it sees the relay close the connection, and closing its side then.
    socket.on('error', () => {}).on('end', () => socket.end()).resume();
    socket.write('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\npartial');
  });
  const base = await listen(stalling);
  const timed = await startGateway({ targetBaseUrl: base, timeout: { read: 300 }, websocket: websocket() });
  const answer = await sendRaw(timed.port, rawHandshake('/'), 5000);
  assert.match(answer, /^HTTP\/1.1 403 Forbidden\r\n/);
  assert.ok(answer.endsWith('partial'), 'the head and what came of the body, then the connection was closed');
  assert.ok(await waitFor(() => held.size === 0), 'the upstream connection was closed by the read timeout');
  const untimed = await startGateway({ targetBaseUrl: base, timeout: { read: 0 }, websocket: websocket() });
  const early = await sendRaw(untimed.port, rawHandshake('/'), 300);
  assert.ok(early.endsWith('partial'));
  assert.ok(await waitFor(() => held.size === 0), 'the client left: the upstream connection was closed without any timeout');
  assert.ok(await waitFor(() => untimed.sockets.size === 0 && timed.sockets.size === 0));
  await timed.close();
  await untimed.close();
  await close(stalling);
});

test.run();
