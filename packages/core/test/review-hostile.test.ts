// Review s35 (hostile clients and broken upstreams): each test names what a production proxy
// (nginx, Envoy, HAProxy; RFC 9110/9112) does, and fails on the main this review ran against.
// The upstream is a raw `net` server so it can misbehave byte for byte.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, sendRaw, waitFor, type MemoryLogger } from '@relay/testkit';
import { createRelay, gatewayServerOptions, type Relay } from '../src/index.js';

type Responder = (socket: Socket, head: string) => void;

interface RawUpstream {
  url: string;
  /** Every byte received, all connections together, in arrival order. */
  received: string;
  respond: Responder;
  readonly open: number;
  close(): Promise<void>;
}

const answerOk: Responder = (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');

/** A keep-alive upstream that hands each request head (once per request) to `respond`. */
async function startRawUpstream(): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const state: RawUpstream = {
    url: '',
    received: '',
    respond: answerOk,
    get open() {
      return sockets.size;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      state.received += chunk.toString('latin1');
      pending += chunk.toString('latin1');
      const end = pending.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = pending.slice(0, end);
      // Bodies in these tests are small and arrive with the head; the rest is not parsed.
      pending = '';
      state.respond(socket, head);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

interface Gateway {
  relay: Relay;
  server: HttpServer;
  port: number;
  logger: MemoryLogger;
  connections(): Promise<number>;
  close(): Promise<void>;
}

/** A relay in a node:http server with the recommended options, `upgrade` listener mounted as docs/websocket.md does. */
async function startGateway(target: string, options: Record<string, unknown> = {}): Promise<Gateway> {
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: target, logger, timeout: { read: 3000 }, ...options });
  await relay.startup();
  const server = createHttpServer({ ...gatewayServerOptions }, relay.handle);
  server.on('upgrade', relay.upgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    relay,
    server,
    port: (server.address() as AddressInfo).port,
    logger,
    connections: () => new Promise<number>((resolve) => server.getConnections((_error, count) => resolve(count))),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await relay.shutdown({ timeout: 500 });
    },
  };
}

const statusOf = (raw: string) => Number(raw.slice(9, 12));
const headOf = (raw: string) => raw.slice(0, raw.indexOf('\r\n\r\n') + 2).toLowerCase();

let upstream: RawUpstream;
let gateway: Gateway;

test.before(async () => {
  upstream = await startRawUpstream();
  gateway = await startGateway(upstream.url);
});

test.after(async () => {
  await gateway.close();
  await upstream.close();
});

test.before.each(() => {
  upstream.respond = answerOk;
});

/** After each case: the relay answers an honest request, holds nothing in flight, and keeps no client connection. */
async function stillServing(): Promise<void> {
  upstream.respond = answerOk;
  const next = await sendRaw(gateway.port, 'GET /next HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.is(statusOf(next), 200, 'the relay keeps serving');
  assert.ok(await waitFor(() => gateway.relay.inFlight === 0), `nothing left in flight (${gateway.relay.inFlight})`);
  let open = await gateway.connections();
  for (let tries = 0; open !== 0 && tries < 200; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    open = await gateway.connections();
  }
  assert.is(open, 0, 'every client connection closed');
}

// RFC 9112 §6.1: a recipient that does not understand a transfer coding answers 501 (a request)
// or treats the message as unusable (a response). nginx's proxy module refuses any upstream
// `Transfer-Encoding` other than `chunked` ("upstream sent unknown Transfer-Encoding") with 502.
// Relay removes the header as hop-by-hop, de-chunks, and hands the client gzip bytes it has no way
// to know are gzip: the body is silently corrupted. Requests get 501 for the same header (item 9).
test('an upstream response with Transfer-Encoding "gzip, chunked" is a 502 ERR_UPSTREAM_PROTOCOL, never relayed with its coding dropped', async () => {
  // A well-framed chunked body whose content is gzip bytes (written byte for byte, latin1).
  upstream.respond = (socket) => socket.write(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n\x1f\x8b\x08\x00\r\n0\r\n\r\n', 'latin1'));
  const raw = await sendRaw(gateway.port, 'GET /gzip-coded HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.is(statusOf(raw), 502, raw.split('\r\n')[0]);
  assert.match(raw, /ERR_UPSTREAM_PROTOCOL/);
  assert.not.ok(raw.includes('127.0.0.1'), 'no internal address in the body');
  await stillServing();
});

// RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response with a
// status code of 1xx (Informational) or 204 (No Content)." A keep-alive client or cache that
// honours it waits for, or takes, bytes of the next response. nginx drops Content-Length on 204.
test('a 204 reaches the client without the Content-Length the upstream wrongly sent', async () => {
  upstream.respond = (socket) => socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n');
  const raw = await sendRaw(gateway.port, 'GET /no-content HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.is(statusOf(raw), 204);
  assert.not.match(headOf(raw), /\r\ncontent-length:/, headOf(raw));
  await stillServing();
});

// Issue 13 item 14: "each upstream fault gets the right status (502) and an accurate log line".
// llhttp accepts a three-digit status such as 099; node:http then refuses to write it, and the
// client gets 500 ERR_INTERNAL with a log line blaming the relay's own head.
test('an upstream status below 100 (099) is a 502 ERR_UPSTREAM_PROTOCOL, not a 500 blamed on the relay', async () => {
  upstream.respond = (socket) => socket.write('HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok');
  const raw = await sendRaw(gateway.port, 'GET /status-099 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.is(statusOf(raw), 502, raw.split('\r\n')[0]);
  assert.match(raw, /ERR_UPSTREAM_PROTOCOL/);
  await stillServing();
});

// RFC 9110 §15: status codes are 100..599; "a client that receives a response with an invalid
// status code SHOULD process the response as if it had a 5xx (Server Error) status code". A
// gateway is that client: it should not pass `600` on to its own clients as if it were HTTP.
test('an upstream status above 599 (600) is a 502 ERR_UPSTREAM_PROTOCOL, not relayed', async () => {
  upstream.respond = (socket) => socket.write('HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok');
  const raw = await sendRaw(gateway.port, 'GET /status-600 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.is(statusOf(raw), 502, raw.split('\r\n')[0]);
  assert.match(raw, /ERR_UPSTREAM_PROTOCOL/);
  await stillServing();
});

// README: with the default trustProxy: false "every client-sent forwarding header (X-Forwarded-*,
// Forwarded, X-Real-IP, True-Client-IP) is removed and the relay writes its own", so "a client
// cannot choose its own" address. In a chunked request's trailer section they pass untouched; an
// upstream that merges trailers into headers (Apache's MergeTrailers, CVE-2013-5704 was this
// bypass) then sees the client's choice. nginx never forwards request trailers at all.
test('in edge mode, forwarding fields a client puts in its request trailers never reach the upstream', async () => {
  upstream.respond = (socket) => setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), 50);
  const before = upstream.received.length;
  const raw = await sendRaw(
    gateway.port,
    'POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
      '3\r\nabc\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Forwarded-Host: admin.internal\r\nTrue-Client-IP: 6.6.6.6\r\n\r\n',
  );
  assert.is(statusOf(raw), 200);
  const seen = upstream.received.slice(before);
  assert.match(seen, /^POST \/upload /, 'the request reached the upstream');
  assert.not.ok(seen.includes('6.6.6.6'), `a client-chosen address reached the upstream: ${JSON.stringify(seen.slice(seen.indexOf('0\r\n')))}`);
  assert.not.ok(seen.includes('admin.internal'), 'a client-chosen X-Forwarded-Host reached the upstream');
  await stillServing();
});

// RFC 9110 §7.8: "A server MAY ignore a received Upgrade header field if it wishes to continue
// using the current protocol on that connection"; h2c upgrades are deprecated (RFC 9113 §3.1)
// and servers ignore them. `curl --http2 http://gateway/…` sends exactly this. Without an
// `upgrade` listener node:http serves it as a plain request; mounting `relay.upgrade` (as
// docs/websocket.md says) turns it into 501 (no websocket transport) or 400 (with one, see
// packages/ws/test/review-hostile.test.ts). nginx and Envoy answer the request over HTTP/1.1.
test('a GET with Upgrade: h2c (not a WebSocket) through relay.upgrade is served as a plain request', async () => {
  const before = upstream.received.length;
  const raw = await sendRaw(
    gateway.port,
    'GET /h2c HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
  );
  assert.is(statusOf(raw), 200, raw.split('\r\n')[0]);
  assert.ok(raw.endsWith('ok'), 'the upstream answer, relayed');
  const seen = upstream.received.slice(before).toLowerCase();
  assert.match(seen, /^get \/h2c /, 'the upstream got the request');
  assert.not.match(seen, /\r\nupgrade:/, 'without the Upgrade header');
  assert.not.match(seen, /\r\nhttp2-settings:/, 'without HTTP2-Settings');
  await stillServing();
});

test.run();
