import { createServer, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, memoryLogger, sendRaw, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay, type Stage, type UpgradeTransport } from '../src/index.js';

// Issue 13, items 3, 7, 9 and 11: request targets and heads the relay must refuse before anything is sent.

let upstream: Upstream;
let served: RelayServer<Relay>;
const logger = memoryLogger();

test.before(async () => {
  upstream = await startUpstream();
  served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', upstreamPrefix: '/v1', logger }));
});

test.after(async () => {
  await served.close();
  await upstream.close();
});

const statusOf = (raw: string) => Number(raw.slice(9, 12));

async function refused(payload: string, status: number, code: string): Promise<void> {
  const before = upstream.requests.length;
  const raw = await sendRaw(served.port, payload, 3000);
  assert.is(statusOf(raw), status, `${JSON.stringify(payload.slice(0, 90))} → ${raw.split('\r\n')[0]}`);
  assert.ok(raw.includes(`(${code})`), `${code} in the body: ${raw.slice(-120)}`);
  assert.is(upstream.requests.length, before, 'the upstream was never reached');
}

test('item 3: a raw "#" in an origin-form target is 400 ERR_BAD_PATH, never forwarded as /v1/..#', async () => {
  await refused('GET /api/..# HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_PATH');
  await refused('GET /api/x#frag HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_PATH');
  await refused('GET /api/x?a=1#..%2f HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_PATH');
});

test('item 3: a "#" in an absolute-form target is 400 too', async () => {
  await refused('GET http://gw/api/..# HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_PATH');
});

test('item 3: a "#" in a dispatched path (a framework stripped the mount) is 400', async () => {
  const relay = createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/v1' });
  await relay.startup();
  const server = createServer((req, res) => relay.dispatch(req, res, { path: req.url!.slice('/api'.length), mountPath: '/api' }));
  const port = Number(new URL(await listen(server)).port);
  const before = upstream.requests.length;
  const raw = await sendRaw(port, 'GET /api/..# HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.is(statusOf(raw), 400);
  assert.is(upstream.requests.length, before);
  await close(server);
  await relay.shutdown();
});

test('item 3: a "#" in a WebSocket handshake target is 400 and reaches no WebSocket transport', async () => {
  const seen: string[] = [];
  const websocket: UpgradeTransport = {
    kind: 'upgrade',
    name: 'recording',
    bind: () => ({
      startup() {},
      shutdown() {},
      handle(request) {
        seen.push(request.path);
        return Promise.resolve({ status: 403, statusMessage: '', headers: { 'content-length': '0' }, body: null });
      },
    }),
  };
  const relay = createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', upstreamPrefix: '/v1', websocket });
  await relay.startup();
  const server: Server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const port = Number(new URL(await listen(server)).port);
  const handshake = (target: string) =>
    `GET ${target} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  assert.is(statusOf(await sendRaw(port, handshake('/api/..#'))), 400);
  assert.is(statusOf(await sendRaw(port, handshake('http://gw/api/..#'))), 400);
  assert.equal(seen, []);
  assert.is(statusOf(await sendRaw(port, handshake('/api/ok'))), 403, 'a clean handshake still reaches the transport');
  assert.equal(seen, ['/v1/ok']);
  await close(server);
  await relay.shutdown();
});

test('item 3: a path a stage sets goes through the client path rules: /v1/../secret is 400 and logged', async () => {
  const stageLog = memoryLogger();
  const rewrite = (path: string): Stage => ({ name: 'rewrite', wrap: (next) => (request) => next({ ...request, path }) });
  for (const bad of ['/v1/../secret', '/v1/%2e%2e/secret', '//evil.example/x', '/v1/x#y', 'v1/x']) {
    const relay = createRelay({ targetBaseUrl: upstream.url, stages: [rewrite(bad)], logger: stageLog });
    const one = await serveRelay(relay);
    const before = upstream.requests.length;
    const raw = await sendRaw(one.port, 'GET /x?token=SECRET HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    assert.is(statusOf(raw), 400, `${bad} → ${raw.split('\r\n')[0]}`);
    assert.ok(raw.includes('(ERR_BAD_PATH)'));
    assert.is(upstream.requests.length, before, `${bad} never reached the upstream`);
    await one.close();
  }
  const warned = stageLog.lines.filter((line) => line.message.startsWith('a stage set an unsafe upstream path'));
  assert.is(warned.length, 5);
  // A stage may still rewrite to any safe path, and a query may hold anything.
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [rewrite('/other/place?next=/../x')] });
  const one = await serveRelay(relay);
  const raw = await sendRaw(one.port, 'GET /x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.is(statusOf(raw), 200);
  assert.is(upstream.requests.at(-1)!.url, '/other/place?next=/../x');
  await one.close();
});

test('item 7: Content-Length named in Connection is 400, never an empty body upstream', async () => {
  await refused('POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nConnection: close, Content-Length\r\n\r\nhello', 400, 'ERR_BAD_REQUEST');
});

test('item 7: a request whose Content-Length came after the headers node:http keeps is 400', async () => {
  let head = 'POST /api/x HTTP/1.1\r\nHost: gw\r\n';
  for (let i = 0; i < 1100; i++) head += `a${i}:1\r\n`;
  await refused(`${head}Content-Length: 5\r\nConnection: close\r\n\r\nhello`, 400, 'ERR_BAD_REQUEST');
  // 200 headers are fine and the body arrives whole.
  let fewer = 'POST /api/x HTTP/1.1\r\nHost: gw\r\n';
  for (let i = 0; i < 200; i++) fewer += `a${i}:1\r\n`;
  const raw = await sendRaw(served.port, `${fewer}Content-Length: 5\r\nConnection: close\r\n\r\nhello`);
  assert.is(statusOf(raw), 200);
  assert.is(upstream.requests.at(-1)!.body.toString(), 'hello');
});

test('item 9: Transfer-Encoding other than chunked alone is 501 (nginx)', async () => {
  const body = '5\r\nhello\r\n0\r\n\r\n';
  await refused(`POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n${body}`, 501, 'ERR_TRANSFER_CODING');
  await refused(`POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: identity, chunked\r\nConnection: close\r\n\r\n${body}`, 501, 'ERR_TRANSFER_CODING');
  const raw = await sendRaw(served.port, `POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n${body}`);
  assert.is(statusOf(raw), 200, 'chunked alone (any case) is relayed');
  assert.is(upstream.requests.at(-1)!.body.toString(), 'hello');
});

test('item 11: two Host lines, an invalid Host, userinfo in an absolute-form target: 400', async () => {
  await refused('GET /api/x HTTP/1.1\r\nHost: gw\r\nHost: other\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST');
  await refused('GET /api/x HTTP/1.1\r\nHost: user@gw\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST');
  await refused('GET /api/x HTTP/1.1\r\nHost: gw/evil\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST');
  await refused('GET /api/x HTTP/1.1\r\nHost: gw:80x\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST');
  await refused('GET http://user:pw@gw/api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST');
  await refused('GET http://evil.example@gw/api/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST');
  for (const host of ['gw', 'gw:8080', '127.0.0.1:1', '[::1]:8080', 'xn--bcher-kva.example']) {
    const raw = await sendRaw(served.port, `GET /api/x HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    assert.is(statusOf(raw), 200, `Host: ${host}`);
  }
});

test('two Authorization lines: 400, as nginx answers, so a stage and the upstream never read different credentials', async () => {
  await refused('GET /api/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer app\r\nAuthorization: Bearer admin\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST');
  await refused('GET /api/x HTTP/1.1\r\nHost: gw\r\nauthorization: a\r\nAccept: */*\r\nAUTHORIZATION: b\r\nAuthorization: c\r\nConnection: close\r\n\r\n', 400, 'ERR_BAD_REQUEST');
  const raw = await sendRaw(served.port, 'GET /api/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer one\r\nConnection: close\r\n\r\n');
  assert.is(statusOf(raw), 200, 'one Authorization line is relayed');
  assert.is(upstream.requests.at(-1)?.headers.authorization, 'Bearer one');
});

test('every refusal above was logged without the query', () => {
  assert.ok(logger.lines.some((line) => line.fields.code === 'ERR_BAD_REQUEST'));
  assert.ok(logger.lines.some((line) => line.fields.code === 'ERR_TRANSFER_CODING'));
});

test.run();
