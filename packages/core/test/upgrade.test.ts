import { createServer, type Server } from 'node:http';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, sendRaw } from '@relay/testkit';
import { RelayError, createRelay, type HeaderRecord, type ProxyRequest, type Stage, type UpgradeTransport } from '../src/index.js';

/** A stand-in WebSocket transport: answers 101 and echoes raw bytes, or rejects by path. */
function fakeWebsocket(log: string[], seen: ProxyRequest[]): UpgradeTransport {
  return {
    kind: 'upgrade',
    name: 'fake-ws',
    bind: () => ({
      startup() {},
      shutdown() {
        log.push('shutdown');
      },
      async handle(request) {
        seen.push(request);
        if (request.path.startsWith('/private')) {
          return { status: 401, statusMessage: '', headers: { 'www-authenticate': 'Bearer', 'content-length': '6' }, body: Readable.from(['denied']) };
        }
        let closed = false;
        const closeUpstream = (reason: Error) => {
          if (closed) return;
          closed = true;
          log.push(`reject:${reason.message}`);
        };
        request.client.setAbortHandler({ request, onClientAbort: closeUpstream });
        return {
          status: 101,
          statusMessage: 'Switching Protocols',
          headers: { 'sec-websocket-protocol': 'chat', 'set-cookie': ['sid=1; Domain=upstream.internal'] },
          body: null,
          upgrade: {
            accept(_req, socket, head, headers: HeaderRecord) {
              request.client.setAbortHandler(null);
              log.push('accept');
              const cookies = (headers['set-cookie'] ?? []).map((c) => `set-cookie: ${c}\r\n`).join('');
              socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n${cookies}\r\n`);
              if (head.length > 0) socket.write(head);
              socket.on('data', (chunk) => socket.write(chunk));
              socket.on('end', () => socket.end());
            },
            reject: closeUpstream,
          },
        };
      },
    }),
  };
}

const handshake = (path: string, extra = '') =>
  `GET ${path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

async function serve(options: Parameters<typeof createRelay>[0], start = true): Promise<{ server: Server; port: number; relay: ReturnType<typeof createRelay> }> {
  const relay = createRelay(options);
  if (start) await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const url = await listen(server);
  return { server, port: Number(new URL(url).port), relay };
}

test('without a websocket transport an upgrade gets 501 and the socket is closed', async () => {
  const { server, port, relay } = await serve({ targetBaseUrl: 'http://127.0.0.1:9' });
  const answer = await sendRaw(port, handshake('/chat'));
  assert.match(answer, /^HTTP\/1.1 501 /);
  assert.match(answer, /ERR_UPGRADE_UNSUPPORTED/);
  await close(server);
  await relay.shutdown();
});

test('the handshake goes through the stages with mount stripping, and the 101 is accepted with the stages’ headers', async () => {
  const log: string[] = [];
  const seen: ProxyRequest[] = [];
  const dropOrigin: Stage = {
    name: 'drop-origin',
    wrap: (next) =>
      async function dropOrigin(request) {
        delete request.headers.origin;
        const response = await next(request);
        response.headers['set-cookie'] = (response.headers['set-cookie'] ?? []).map((c) => c.replace('; Domain=upstream.internal', ''));
        return response;
      },
  };
  const { server, port, relay } = await serve({
    targetBaseUrl: 'http://127.0.0.1:9',
    mountPath: '/ws',
    upstreamPrefix: '/v1',
    stages: [dropOrigin],
    websocket: fakeWebsocket(log, seen),
  });
  const answer = await sendRaw(port, handshake('/ws/room?id=7', 'Origin: http://evil.example\r\nSec-WebSocket-Protocol: chat\r\n') + 'hello', 500);
  assert.match(answer, /^HTTP\/1.1 101 /);
  assert.match(answer, /set-cookie: sid=1\r\n/);
  assert.ok(answer.endsWith('hello'), 'bytes after the head reach the session');
  assert.is(seen.length, 1);
  assert.is(seen[0]!.path, '/v1/room?id=7');
  assert.is(seen[0]!.headers.origin, undefined, 'the stage dropped Origin');
  assert.is(seen[0]!.headers.upgrade, undefined, 'hop-by-hop Upgrade is not in the record');
  assert.is(seen[0]!.headers['sec-websocket-protocol'], 'chat');
  assert.is(seen[0]!.headers['x-forwarded-prefix'], '/ws');
  assert.equal(log, ['accept']);
  await close(server);
  await relay.shutdown();
  assert.equal(log, ['accept', 'shutdown'], 'shutdown reaches the websocket transport');
});

test('an upstream rejection reaches the client as that HTTP status with its body', async () => {
  const { server, port, relay } = await serve({ targetBaseUrl: 'http://127.0.0.1:9', websocket: fakeWebsocket([], []) });
  const answer = await sendRaw(port, handshake('/private/room'));
  assert.match(answer, /^HTTP\/1.1 401 Unauthorized\r\n/);
  assert.match(answer, /www-authenticate: Bearer/);
  assert.match(answer, /connection: close/);
  assert.ok(answer.endsWith('\r\n\r\ndenied'));
  await close(server);
  await relay.shutdown();
});

test('a stage that answers instead of the 101 makes the relay reject the hand-off', async () => {
  const log: string[] = [];
  const deny: Stage = {
    name: 'deny',
    wrap: (next) =>
      async function deny(request) {
        await next(request);
        return { status: 403, statusMessage: '', headers: { 'content-type': 'text/plain' }, body: Readable.from(['no']) };
      },
  };
  const { server, port, relay } = await serve({ targetBaseUrl: 'http://127.0.0.1:9', stages: [deny], websocket: fakeWebsocket(log, []) });
  const answer = await sendRaw(port, handshake('/room'));
  assert.match(answer, /^HTTP\/1.1 403 /);
  assert.ok(answer.endsWith('no'));
  assert.is(log.length, 1);
  assert.match(log[0]!, /^reject:/);
  await close(server);
  await relay.shutdown();
});

test('a stage that fails after the transport’s 101: the upstream side is closed the same way, and the client gets 500', async () => {
  const log: string[] = [];
  const broken: Stage = {
    name: 'broken',
    wrap: (next) =>
      async function broken(request) {
        await next(request);
        throw new Error('stage bug after the handshake');
      },
  };
  const logged: string[] = [];
  const logger = { debug() {}, info() {}, warn() {}, error: (_fields: object, message: string) => void logged.push(message) };
  const { server, port, relay } = await serve({ targetBaseUrl: 'http://127.0.0.1:9', stages: [broken], websocket: fakeWebsocket(log, []), logger });
  const answer = await sendRaw(port, handshake('/room'));
  assert.match(answer, /^HTTP\/1.1 500 /);
  assert.not.match(answer, /stage bug/, 'the detail stays in the log');
  assert.is(log.length, 1, 'the transport’s upstream side is closed once');
  assert.match(log[0]!, /^reject:/);
  assert.ok(logged.includes('relay pipeline failed'));
  await close(server);
  await relay.shutdown();
});

test('unsafe paths, outside-mount paths and a shut-down relay are refused before any transport', async () => {
  const seen: ProxyRequest[] = [];
  const { server, port, relay } = await serve({ targetBaseUrl: 'http://127.0.0.1:9', mountPath: '/ws', websocket: fakeWebsocket([], seen) }, false);
  assert.match(await sendRaw(port, handshake('/ws/../admin')), /^HTTP\/1.1 400 /);
  assert.match(await sendRaw(port, handshake('/elsewhere')), /^HTTP\/1.1 404 /);
  await relay.startup();
  await relay.shutdown();
  assert.match(await sendRaw(port, handshake('/ws/room')), /^HTTP\/1.1 503 /);
  assert.is(seen.length, 0);
  await close(server);
  await relay.shutdown();
});

test('a client that leaves while a handshake refusal’s body streams: the body (and the upstream behind it) is destroyed', async () => {
  let body: Readable | null = null;
  const endless: UpgradeTransport = {
    kind: 'upgrade',
    name: 'endless',
    bind: () => ({
      startup() {},
      shutdown() {},
      async handle() {
        // A refusal whose body never ends, as an upstream that stalls mid-body would give.
        body = new Readable({ read() {} });
        body.push('partial');
        return { status: 403, statusMessage: '', headers: { 'content-type': 'text/plain' }, body };
      },
    }),
  };
  const { server, port, relay } = await serve({ targetBaseUrl: 'http://127.0.0.1:9', websocket: endless });
  const answer = await sendRaw(port, handshake('/room'), 300);
  assert.match(answer, /^HTTP\/1.1 403 /);
  assert.ok(answer.endsWith('partial'));
  const deadline = Date.now() + 2000;
  while (!body!.destroyed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(body!.destroyed, 'the body was destroyed when the client socket closed');
  await close(server);
  await relay.shutdown();
});

test('ERR_BAD_HANDSHAKE is a 400 with a short body, for a transport that refuses a malformed handshake', async () => {
  const picky: UpgradeTransport = {
    kind: 'upgrade',
    name: 'picky',
    bind: () => ({
      startup() {},
      shutdown() {},
      async handle() {
        throw new RelayError('ERR_BAD_HANDSHAKE', 'missing Sec-WebSocket-Key');
      },
    }),
  };
  const { server, port, relay } = await serve({ targetBaseUrl: 'http://127.0.0.1:9', websocket: picky });
  const answer = await sendRaw(port, handshake('/room'));
  assert.match(answer, /^HTTP\/1.1 400 Bad Request\r\n/);
  assert.ok(answer.endsWith('400 Bad Request: the WebSocket handshake is invalid (ERR_BAD_HANDSHAKE)\n'));
  assert.not.match(answer, /Sec-WebSocket-Key/, 'the detail goes to the log, not the client');
  await close(server);
  await relay.shutdown();
});

test.run();
