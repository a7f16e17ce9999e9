// Review of the h2c fallback (`serveAsPlainRequest`) and of the HTTP/2 front: each test names the
// expected behaviour and fails today.
import { createServer, type Server } from 'node:http';
import http2 from 'node:http2';
import { connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocketServer } from 'ws';
import { close, listen, listenHttp2, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { createRelay, type Relay } from '../src/index.js';

const offer = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';

async function relayTo(upstream: Upstream): Promise<Relay> {
  const relay = createRelay({ targetBaseUrl: upstream.url, timeout: { read: 3000, write: 3000 } });
  await relay.startup();
  return relay;
}

async function portOf(server: Server): Promise<number> {
  await listen(server);
  return (server.address() as AddressInfo).port;
}

/** Writes `payload` on a new connection and returns all it read within `ms` (or until the server closed it). */
function readFor(port: number, payload: string, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = connectTcp(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.write(payload);
  });
}

const statusLines = (text: string) => text.match(/HTTP\/1\.1 \d{3}/g) ?? [];

test('pipelined requests that offer h2c while an earlier answer is pending are all answered, in order (RFC 9112 §9.3.2)', async () => {
  const upstream = await startUpstream();
  const relay = await relayTo(upstream);
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const port = await portOf(server);
  try {
    // One plain GET, then one offering h2c, written together (as a pipelining client does):
    // node:http emits `upgrade` for the second while the first answer is still pending.
    const text = await readFor(port, `GET /first HTTP/1.1\r\nHost: gw\r\n\r\nGET /second HTTP/1.1\r\nHost: gw\r\n${offer}Connection: close\r\n\r\n`, 2000);
    assert.is(upstream.requests.length, 2, 'both requests reached the upstream');
    assert.equal(statusLines(text), ['HTTP/1.1 200', 'HTTP/1.1 200'], `the second answer never came (the client hung until it gave up):\n${text}`);
  } finally {
    await close(server);
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test('five pipelined h2c offers on one connection: every answer is written and relay.inFlight returns to 0 once the upstream answered them all', async () => {
  const upstream = await startUpstream();
  const relay = await relayTo(upstream);
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const port = await portOf(server);
  const socket = connectTcp(port, '127.0.0.1');
  socket.on('error', () => {});
  try {
    const requests = Array.from({ length: 5 }, (_, index) => `GET /m${index} HTTP/1.1\r\nHost: gw\r\n${offer}\r\n`).join('');
    socket.write(requests);
    assert.ok(await waitFor(() => upstream.requests.length === 5, 2000), 'all five reached the upstream');
    // The upstream answered all five at once; the relay has nothing left to wait for.
    assert.ok(await waitFor(() => relay.inFlight === 0, 2000), `relay.inFlight is stuck at ${relay.inFlight}: answers queued behind a parser the socket no longer has`);
  } finally {
    socket.destroy();
    await close(server);
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test("an h2c offer beside the app's own upgrade listener (a ws server for /own) is served as the plain request it is, not refused as a bad WebSocket handshake", async () => {
  const upstream = await startUpstream();
  const relay = await relayTo(upstream);
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  // The app's own WebSocket endpoint, which only takes /own and leaves every other upgrade alone.
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (req.url === '/own') wss.handleUpgrade(req, socket, head, (ws) => ws.close());
  });
  const port = await portOf(server);
  try {
    const text = await readFor(port, `GET /api HTTP/1.1\r\nHost: gw\r\n${offer}Connection: close\r\n\r\n`, 2000);
    // curl --http2 http://gw/api: nginx and Envoy answer it as HTTP/1.1 (RFC 9110 §7.8); docs/websocket.md says such a request is "left to" the app's listeners, not refused by the relay.
    assert.not.match(text, /ERR_BAD_HANDSHAKE|ERR_UPGRADE_UNSUPPORTED/, `the relay refused a request that is not a WebSocket handshake:\n${text}`);
    assert.match(text, /^HTTP\/1\.1 200 /, text);
  } finally {
    wss.close();
    await close(server);
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test("an h2c offer does not emit the server's 'connection' event again: one TCP connection is one 'connection'", async () => {
  const upstream = await startUpstream();
  const relay = await relayTo(upstream);
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  let connections = 0;
  server.on('connection', () => connections++);
  const port = await portOf(server);
  try {
    const text = await readFor(port, `GET /a HTTP/1.1\r\nHost: gw\r\n${offer}\r\nGET /b HTTP/1.1\r\nHost: gw\r\n${offer}\r\nGET /c HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`, 2000);
    assert.ok(statusLines(text).length >= 1, text);
    assert.is(connections, 1, `one client connection was counted ${connections} times by the app's 'connection' listener`);
  } finally {
    await close(server);
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

/** An HTTP/2 POST with `Expect: 100-continue` whose body is sent only after a 100, as node:http2's client does. */
function expectContinueOverH2(url: string, path: string, waitMs: number): Promise<{ continued: boolean; status: number; body: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const session = http2.connect(url);
    session.on('error', () => {});
    const stream = session.request({ ':method': 'POST', ':path': path, expect: '100-continue' }, { endStream: false });
    const outcome = { continued: false, status: 0, body: '', ms: 0 };
    stream.on('continue', () => {
      outcome.continued = true;
      stream.end('payload');
    });
    stream.on('response', (headers) => (outcome.status = Number(headers[':status'])));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (outcome.body += chunk));
    stream.on('error', () => {});
    const timer = setTimeout(() => stream.close(), waitMs);
    stream.on('close', () => {
      clearTimeout(timer);
      outcome.ms = Date.now() - started;
      session.destroy();
      resolve(outcome);
    });
  });
}

test("HTTP/2 front with checkContinue → relay.handle: Expect goes end to end, the upstream's 100 and its refusal (417) reach the client, nothing hangs", async () => {
  const upstream = await startUpstream();
  // With a checkContinue listener node emits no 'request' for these: the upstream's record is kept here.
  const expects: Array<string | undefined> = [];
  upstream.server.on('checkContinue', (req, res) => {
    expects.push(req.headers.expect);
    if (req.url === '/deny') {
      res.writeHead(417, { 'content-length': '2' });
      res.end('no');
      return;
    }
    res.writeContinue();
    req.resume();
    req.on('end', () => res.end('accepted'));
  });
  const relay = await relayTo(upstream);
  const front = http2.createServer(relay.handle);
  // As docs/http-semantics and the HTTP/1.1 test do: the relay, not node, decides on the 100.
  front.on('checkContinue', relay.handle);
  const listening = await listenHttp2(front);
  try {
    const accepted = await expectContinueOverH2(listening.url, '/ok', 2000);
    const denied = await expectContinueOverH2(listening.url, '/deny', 2000);
    assert.is(expects[0], '100-continue', 'the Expect never went upstream, so the upstream waits for a body the client never sends');
    assert.ok(accepted.continued, `no 100 Continue after ${accepted.ms} ms (status ${accepted.status})`);
    assert.is(accepted.status, 200);
    assert.is(accepted.body, 'accepted');
    assert.is(denied.status, 417, `the upstream's refusal never arrived: status ${denied.status} after ${denied.ms} ms`);
  } finally {
    await listening.close();
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test.run();
