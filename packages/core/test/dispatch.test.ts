import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, closedPort, fetchRaw, listen, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { createRelay, RelayError, type DispatchRoute, type ProxyRequest, type Relay, type RelayOptions, type Stage, type UpgradeTransport } from '../src/index.js';

// relay.dispatch / dispatchUpgrade: a framework has stripped the mount already and hands the relay the rest.

let upstream: Upstream;
const servers: Server[] = [];
const relays: Relay[] = [];

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await Promise.all(servers.map((server) => close(server)));
  await Promise.all(relays.map((relay) => relay.shutdown()));
  await upstream.close();
});

/** Serves `relay.dispatch` with the route `routeOf` returns for each request (a stand-in for a framework). */
async function front(
  options: Partial<RelayOptions>,
  routeOf: (req: IncomingMessage, res: ServerResponse) => DispatchRoute | Promise<DispatchRoute>,
): Promise<{ url: string; relay: Relay }> {
  const relay = createRelay({ targetBaseUrl: upstream.url, ...options });
  await relay.startup();
  relays.push(relay);
  const server = createServer(async (req, res) => relay.dispatch(req, res, await routeOf(req, res)));
  servers.push(server);
  return { url: await listen(server), relay };
}

/** Strips `/auth` the way Express and Connect do: `/auth` and `/auth?x` leave `''` / `?x`. */
function stripAuth(req: IncomingMessage): DispatchRoute {
  const url = req.url!;
  return { path: url.startsWith('/auth') ? url.slice(5) : url, mountPath: '/auth', originalUrl: url };
}

const seenUrl = async (url: string) => JSON.parse((await fetchRaw(url)).text).url as string;

test("Set-Cookie: the app's cookies (set before dispatch, or added in writeHead as express-session's on-headers hook does) go beside the upstream's, each on its own line", async () => {
  // RFC 6265 §3: one cookie per field line; node's writeHead would let the upstream's lines replace the app's.
  const cookieUpstream = await startUpstream((_req, res) => {
    res.setHeader('set-cookie', ['up=1; Path=/', 'theme=dark; Path=/']);
    res.end('ok');
  });
  const relay = createRelay({ targetBaseUrl: cookieUpstream.url });
  await relay.startup();
  relays.push(relay);
  const server = createServer((req, res) => {
    res.setHeader('set-cookie', 'early=1; Path=/');
    const writeHead = res.writeHead;
    // on-headers: the hook runs inside writeHead, before node merges the headers it was given.
    res.writeHead = function hooked(this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
      const prev = this.getHeader('set-cookie') ?? [];
      this.setHeader('set-cookie', [...(Array.isArray(prev) ? prev : [String(prev)]), 'sid=s1; HttpOnly']);
      return writeHead.apply(this, args);
    } as ServerResponse['writeHead'];
    relay.dispatch(req, res, { path: req.url!, mountPath: '' });
  });
  servers.push(server);
  try {
    const answer = await fetchRaw(`${await listen(server)}/x`);
    assert.is(answer.status, 200);
    assert.equal(answer.headers['set-cookie'], ['early=1; Path=/', 'up=1; Path=/', 'theme=dark; Path=/', 'sid=s1; HttpOnly']);
  } finally {
    await cookieUpstream.close();
  }
});

test('the path after the mount is joined under the prefix, not stripped again', async () => {
  const plain = await front({}, stripAuth);
  const prefixed = await front({ upstreamPrefix: '/api/v1' }, stripAuth);
  assert.is(await seenUrl(`${plain.url}/auth/login?next=%2F`), '/login?next=%2F');
  assert.is(await seenUrl(`${prefixed.url}/auth/login`), '/api/v1/login');
  const echoed = JSON.parse((await fetchRaw(`${prefixed.url}/auth/login`)).text);
  assert.is(echoed.headers['x-forwarded-prefix'], '/auth');
});

test('the bare mount ("" or a lone query) maps to the prefix without a trailing slash; "/" keeps it', async () => {
  const plain = await front({}, stripAuth);
  const prefixed = await front({ upstreamPrefix: '/api/v1' }, stripAuth);
  assert.is(await seenUrl(`${plain.url}/auth`), '/');
  assert.is(await seenUrl(`${prefixed.url}/auth`), '/api/v1');
  assert.is(await seenUrl(`${prefixed.url}/auth?a=1`), '/api/v1?a=1');
  assert.is(await seenUrl(`${prefixed.url}/auth?`), '/api/v1');
  assert.is(await seenUrl(`${prefixed.url}/auth/`), '/api/v1/');
});

test('core path checks apply to the dispatched path: traversal, "//host" and relative targets get 400', async () => {
  const { url } = await front({ upstreamPrefix: '/api' }, stripAuth);
  const port = Number(new URL(url).port);
  const before = upstream.requests.length;
  // Raw bytes: a URL-parsing client would resolve the dot segments before sending.
  for (const path of ['/auth/..%2fadmin', '/auth/%2e%2e/admin', '/auth//evil.example/x', '/auth/a/../../admin']) {
    const answer = await sendRaw(port, `GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
    assert.match(answer, /^HTTP\/1.1 400 /, path);
    assert.match(answer, /ERR_BAD_PATH/);
    assert.not.match(answer, /127\.0\.0\.1/);
  }
  const relative = await front({}, () => ({ path: 'admin', mountPath: '/auth' }));
  assert.is((await fetchRaw(`${relative.url}/x`)).status, 400);
  assert.is(upstream.requests.length, before, 'the upstream was never reached');
});

test('originalUrl reaches client.originalUrl; without it req.url is used', async () => {
  const seen: string[] = [];
  const record: Stage = {
    name: 'record',
    wrap: (next) =>
      function record(request) {
        seen.push(request.client.originalUrl);
        return next(request);
      },
  };
  const withOriginal = await front({ stages: [record] }, (req) => ({ path: '/login', mountPath: '/auth', originalUrl: `/auth${req.url}` }));
  const without = await front({ stages: [record] }, () => ({ path: '/login', mountPath: '/auth' }));
  await fetchRaw(`${withOriginal.url}/x?y=1`);
  await fetchRaw(`${without.url}/x?y=1`);
  assert.equal(seen, ['/auth/x?y=1', '/x?y=1']);
});

test('onError receives errors before the response; the relay writes nothing itself', async () => {
  const port = await closedPort();
  const errors: RelayError[] = [];
  const { url } = await front({ targetBaseUrl: `http://127.0.0.1:${port}` }, (_req, res) => ({
    path: '/x',
    mountPath: '',
    onError(error) {
      errors.push(error);
      res.writeHead(599, { 'content-type': 'text/plain' }).end('from the app');
    },
  }));
  const response = await fetchRaw(`${url}/x`);
  assert.is(response.status, 599);
  assert.is(response.text, 'from the app');
  assert.is(errors.length, 1);
  assert.ok(errors[0] instanceof RelayError);
  assert.is(errors[0]!.code, 'ERR_UPSTREAM_UNREACHABLE');
});

test("a stage learns what onError answered through request.client's answer handler; without onError it is never asked", async () => {
  const port = await closedPort();
  const answered: Array<[number, number | null]> = [];
  const handsOff: boolean[] = [];
  const listening: Stage = {
    name: 'listening',
    wrap: (next) =>
      function listeningStage(request: ProxyRequest) {
        const client = request.client;
        return next(request).catch((error: unknown) => {
          handsOff.push(client.appAnswersErrors);
          client.setAnswerHandler({ onClientAnswered: (status, bytes) => answered.push([status, bytes]) });
          throw error;
        });
      },
  };
  const { url, relay } = await front({ targetBaseUrl: `http://127.0.0.1:${port}`, stages: [listening] }, (_req, res) => ({
    path: '/x',
    mountPath: '',
    onError() {
      res.statusCode = 503;
      res.setHeader('content-length', 4);
      res.end('busy');
    },
  }));
  const response = await fetchRaw(`${url}/x`);
  assert.equal([response.status, response.text], [503, 'busy']);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(answered, [[503, 4]]);
  const server = createServer(relay.handle);
  servers.push(server);
  const own = await listen(server);
  assert.is((await fetchRaw(`${own}/x`)).status, 502);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(handsOff, [true, false]);
  assert.is(answered.length, 1, 'relay.handle answers errors itself: the handler is never asked');
});

/** Reads the client's body fully, as a body parser would, then dispatches `transform(bytes)` as the body. */
function consumed(transform: (bytes: Buffer) => Buffer) {
  return async (req: IncomingMessage): Promise<DispatchRoute> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    assert.ok(req.readableEnded);
    return { path: req.url!, mountPath: '', body: transform(Buffer.concat(chunks)) };
  };
}

test('a replacement body is sent instead of req with a fresh Content-Length, without Transfer-Encoding or Content-Encoding', async () => {
  const { url } = await front({}, consumed(() => Buffer.from('{"rebuilt":true}')));
  const before = upstream.requests.length;
  const response = await fetchRaw(`${url}/echo`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'content-encoding': 'gzip' },
    body: 'ignored-bytes',
  });
  assert.is(response.status, 200);
  const seen = upstream.requests[before]!;
  assert.is(seen.body.toString(), '{"rebuilt":true}');
  assert.is(seen.headers['content-length'], '16');
  assert.is(seen.headers['transfer-encoding'], undefined);
  assert.is(seen.headers['content-encoding'], undefined);
  assert.is(seen.headers['content-type'], 'application/json');
});

test('an empty replacement body is sent as Content-Length: 0, with no hang', async () => {
  const { url } = await front({ timeout: 2000 }, consumed(() => Buffer.alloc(0)));
  const before = upstream.requests.length;
  const response = await fetchRaw(`${url}/echo`, { method: 'POST', body: 'abc' });
  assert.is(response.status, 200);
  assert.is(upstream.requests[before]!.headers['content-length'], '0');
  assert.is(upstream.requests[before]!.body.length, 0);
});

test('a replacement body can be replayed by a retry stage: every attempt sends the same bytes', async () => {
  const twice: Stage = {
    name: 'twice',
    wrap: (next) =>
      async function twice(request) {
        assert.ok(request.replayBody !== null, 'a buffered body is replayable');
        const first = await next(request);
        first.body?.resume();
        return next({ ...request, attempt: 2, body: request.replayBody!() });
      },
  };
  const { url } = await front({ stages: [twice] }, consumed((bytes) => Buffer.concat([bytes, Buffer.from('!')])));
  const before = upstream.requests.length;
  const response = await fetchRaw(`${url}/echo`, { method: 'PUT', body: 'payload' });
  assert.is(response.status, 200);
  assert.equal(
    upstream.requests.slice(before).map((seen) => seen.body.toString()),
    ['payload!', 'payload!'],
  );
});

test('dispatchUpgrade maps the path after the mount, bare mount included', async () => {
  const seen: ProxyRequest[] = [];
  const websocket: UpgradeTransport = {
    kind: 'upgrade',
    name: 'fake-ws',
    bind: () => ({
      startup() {},
      shutdown() {},
      async handle(request) {
        seen.push(request);
        return { status: 403, statusMessage: '', headers: { 'content-length': '2' }, body: Readable.from(['no']) };
      },
    }),
  };
  const relay = createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/v1', websocket });
  await relay.startup();
  relays.push(relay);
  const server = createServer();
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => {
    const url = req.url!;
    relay.dispatchUpgrade(req, socket, head, { path: url.slice('/chat'.length), mountPath: '/chat', originalUrl: url });
  });
  servers.push(server);
  const port = Number(new URL(await listen(server)).port);
  const handshake = (path: string) =>
    `GET ${path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  assert.match(await sendRaw(port, handshake('/chat/room?id=7')), /^HTTP\/1.1 403 /);
  assert.match(await sendRaw(port, handshake('/chat')), /^HTTP\/1.1 403 /);
  assert.match(await sendRaw(port, handshake('/chat/..%2fadmin')), /^HTTP\/1.1 400 /);
  assert.equal(
    seen.map((request) => [request.path, request.headers['x-forwarded-prefix'], request.client.originalUrl]),
    [
      ['/v1/room?id=7', '/chat', '/chat/room?id=7'],
      ['/v1', '/chat', '/chat'],
    ],
  );
});

test.run();
