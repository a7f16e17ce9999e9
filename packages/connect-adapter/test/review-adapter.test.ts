// Review of the connect adapter (and the front doors the docs list beside it) as a user mounts
// it in a real app: each test names the behaviour it expects and failed when it was written.
import http, { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import compression from 'compression';
import type { AddressInfo } from 'node:net';
import { createGunzip } from 'node:zlib';
import connect from 'connect';
import express from 'express';
import fastify from 'fastify';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import qs from 'qs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay } from '@relay/core';
import { close, delay, fetchRaw, listen, memoryLogger, sendRaw, startUpstream, tlsFixture, waitFor, type Upstream } from '@relay/testkit';
import { websocket } from '@relay/ws';
import { relayLifecycle, routeUpgrades, toConnect } from '../src/index.js';
import { relayPlugin } from '../../frameworks/src/fastify.js';
import { relayHandler, type NodeEnv } from '../../frameworks/src/hono.js';
import { http2Gateway } from '../../../docs/examples/frameworks.js';


let upstream: Upstream;
const relays: Relay[] = [];
const servers: Server[] = [];

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await Promise.all(servers.map((server) => close(server)));
  await Promise.all(relays.map((relay) => relay.shutdown({ timeout: 0 })));
  await upstream.close();
});

async function relayTo(url: string): Promise<Relay> {
  const relay = createRelay({ targetBaseUrl: url, timeout: 5000, logger: memoryLogger() });
  await relay.startup();
  relays.push(relay);
  return relay;
}

async function serveApp(listener: http.RequestListener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  return listen(server);
}

/** What the echo upstream saw of the last request. */
function lastSeen() {
  return upstream.requests[upstream.requests.length - 1]!;
}

test('Express: a request an earlier middleware rewrote into the mount (/legacy-users → /api/users) is relayed, not passed to the next handler', async () => {
  const relay = await relayTo(upstream.url);
  const app = express();
  app.use((req, _res, next) => {
    if (req.url === '/legacy-users') req.url = '/api/users'; // an alias for an old client
    if (req.url === '/api/getme') req.url = '/api/me';
    next();
  });
  app.use('/api', toConnect(relay));
  app.use((_req, res) => void res.status(404).send('app: not found'));
  const url = await serveApp(app);
  // The same with the relay mounted at the root: /legacy-users → /users.
  const rootApp = express();
  rootApp.use((req, _res, next) => {
    if (req.url === '/legacy-users') req.url = '/users';
    next();
  });
  rootApp.use(toConnect(relay));
  rootApp.use((_req, res) => void res.status(404).send('app: not found'));
  const rootUrl = await serveApp(rootApp);
  for (const [base, path, upstreamPath] of [[url, '/legacy-users', '/users'], [url, '/api/getme', '/me'], [rootUrl, '/legacy-users', '/users']] as const) {
    const before = upstream.requests.length;
    const response = await fetchRaw(`${base}${path}`);
    assert.is(response.status, 200, `${path}: ${response.status} ${response.text}`);
    assert.is(upstream.requests.length, before + 1, `${path} reached the upstream`);
    assert.is(lastSeen().url, upstreamPath);
  }
});

test('express.json(): a chunked request with an empty body reaches the upstream empty, not as "{}"', async () => {
  const relay = await relayTo(upstream.url);
  const app = express();
  app.use(express.json());
  app.use('/api', toConnect(relay));
  const url = await serveApp(app);
  const status = await new Promise<number>((resolve, reject) => {
    const request = http.request(`${url}/api/ping`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    request.on('error', reject);
    request.end(); // the zero-length last chunk only: no body
  });
  assert.is(status, 200);
  assert.is(lastSeen().body.toString('utf8'), '', 'the client sent no body; the upstream got one the parser made up');
});

test('routeUpgrades: a plain HTTP request offering Upgrade: h2c (Java HttpClient, curl --http2) is still answered by the app and the relay over HTTP/1.1', async () => {
  const relay = createRelay({ targetBaseUrl: upstream.url, websocket: websocket() });
  await relay.startup();
  relays.push(relay);
  const app = express();
  app.use('/chat', toConnect(relay));
  app.get('/health', (_req, res) => void res.send('app: healthy'));
  const server = createServer(app);
  servers.push(server);
  const port = Number(new URL(await listen(server)).port);
  routeUpgrades(server, { '/chat': relay }); // as docs/frameworks.md wires WebSocket upgrades
  // RFC 9110 §7.8: a server may ignore Upgrade and answer the request as it stands.
  const h2c = (path: string) =>
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n`;
  const own = await sendRaw(port, h2c('/health'), 1500);
  assert.match(own.split('\r\n')[0]!, /^HTTP\/1\.1 200 /, `the app's own route: ${JSON.stringify(own.slice(0, 120))}`);
  assert.match(own, 'app: healthy');
  const relayed = await sendRaw(port, h2c('/chat/history'), 1500);
  assert.match(relayed.split('\r\n')[0]!, /^HTTP\/1\.1 200 /, `under the relay's mount: ${JSON.stringify(relayed.slice(0, 120))}`);
});

test("relayLifecycle.close(server) resolves soon after the app's own request on a keep-alive connection has ended, not at the deadline", async () => {
  const slow = await startUpstream((_req, res) => void setTimeout(() => res.end('relayed'), 300));
  const relay = createRelay({ targetBaseUrl: slow.url });
  const app = express();
  app.use('/api', toConnect(relay));
  app.get('/report', (_req, res) => void setTimeout(() => res.send('report done'), 800)); // the app's own slow route
  const lifecycle = relayLifecycle([relay]);
  await lifecycle.startup();
  const server = createServer(app);
  const url = await listen(server);
  const agent = new http.Agent({ keepAlive: true }); // a browser, a load balancer: keep-alive
  const get = (path: string) =>
    new Promise<string>((resolve) => {
      http
        .get(`${url}${path}`, { agent }, (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve(`${res.statusCode} ${text}`));
        })
        .on('error', (error) => resolve(`error ${error.message}`));
    });
  const own = get('/report');
  const relayed = get('/api/x');
  await delay(100);
  const started = Date.now();
  await lifecycle.close(server, { timeout: 8000 });
  const took = Date.now() - started;
  assert.is(await own, '200 report done');
  assert.is(await relayed, '200 relayed');
  agent.destroy();
  await slow.close();
  // The last request ended after ~0.7 s; the connection it leaves idle must not hold the close for the full 8 s.
  assert.ok(took < 4000, `close took ${took} ms: the idle keep-alive connection was only cut at the deadline`);
});

test('express.json({ strict: false }): a JSON string whose text is itself JSON ("42") reaches the upstream as that JSON string', async () => {
  const relay = await relayTo(upstream.url);
  const app = express();
  app.use(express.json({ strict: false }));
  app.use('/api', toConnect(relay));
  const url = await serveApp(app);
  for (const sent of ['"42"', '"{\\"a\\":1}"', '"true"']) {
    const response = await fetchRaw(`${url}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sent });
    assert.is(response.status, 200, response.text);
    const body = lastSeen().body.toString('utf8');
    assert.equal(JSON.parse(body), JSON.parse(sent), `sent ${sent}, the upstream got ${body}: a string became another JSON type`);
  }
});

test('a string body under a JSON type with no Content-Length (chunked) is refused with 500 ERR_BODY_CONSUMED: raw text or a JSON string value cannot be told apart', async () => {
  const relay = await relayTo(upstream.url);
  const app = express();
  app.use(express.json({ strict: false }));
  app.use('/api', toConnect(relay));
  const url = await serveApp(app);
  const before = upstream.requests.length;
  const response = await fetchRaw(`${url}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body: '"42"' });
  assert.is(response.status, 500, response.text);
  assert.match(response.text, 'ERR_BODY_CONSUMED');
  assert.is(upstream.requests.length, before, 'nothing sent upstream');
});

test('express.json(): an integer beyond 2^53 reaches the upstream as sent, or the request is refused with 500 ERR_BODY_CONSUMED', async () => {
  const relay = await relayTo(upstream.url);
  const app = express();
  app.use(express.json());
  app.use('/api', toConnect(relay));
  const url = await serveApp(app);
  const sent = '{"orderId":12345678901234567891,"amount":1e400}';
  const before = upstream.requests.length;
  const response = await fetchRaw(`${url}/api/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sent });
  if (response.status === 500) {
    assert.match(response.text, 'ERR_BODY_CONSUMED');
    assert.is(upstream.requests.length, before, 'nothing sent upstream');
    return;
  }
  const body = lastSeen().body.toString('utf8');
  // README: "A body that was read and cannot be rebuilt faithfully … is refused with 500".
  assert.match(body, '12345678901234567891', `the upstream got ${body}`);
  assert.not.match(body, '"amount":null');
});

test('express.urlencoded({ extended: true }): tags[]=a reaches a qs-reading upstream as an array, as the client sent it', async () => {
  const relay = await relayTo(upstream.url);
  const app = express();
  app.use(express.urlencoded({ extended: true }));
  app.use('/api', toConnect(relay));
  const url = await serveApp(app);
  const sent = 'tags%5B%5D=a&user%5Broles%5D%5B%5D=admin';
  const response = await fetchRaw(`${url}/api/form`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: sent });
  assert.is(response.status, 200, response.text);
  const body = lastSeen().body.toString('utf8');
  // The nested array keeps its brackets; the top-level one must too (PHP and Rails need them as well).
  assert.equal(qs.parse(body), qs.parse(sent), `sent ${sent}, the upstream got ${body}`);
});

test("compression() before the relay: an event stream's first event reaches the client while the upstream keeps the stream open", async () => {
  let release: () => void = () => {};
  const events = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: one\n\n');
    release = () => res.end('data: two\n\n');
  });
  const relay = await relayTo(events.url);
  const app = express();
  app.use(compression());
  app.use('/api', toConnect(relay));
  const url = await serveApp(app);
  let text = '';
  const request = http.get(`${url}/api/events`, { headers: { 'accept-encoding': 'gzip', accept: 'text/event-stream' }, agent: false }, (res) => {
    const decoded = res.headers['content-encoding'] === 'gzip' ? res.pipe(createGunzip()) : res;
    decoded.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    decoded.on('error', () => {});
  });
  request.on('error', () => {});
  const arrived = await waitFor(() => text.includes('data: one'), 2000);
  release();
  request.destroy();
  await events.close();
  assert.ok(arrived, `the first event was held back (received so far: ${JSON.stringify(text)})`);
});

test('HTTP/2 (Connect): a Buffer req.body a middleware left for a request without Content-Length is forwarded as is', async () => {
  const relay = await relayTo(upstream.url);
  const app = connect();
  // A raw-body reader (webhook signature check) that keeps the bytes in req.body, as express.raw() does.
  app.use((req: IncomingMessage & { body?: Buffer }, _res: ServerResponse, next: () => void) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      req.body = Buffer.concat(chunks);
      next();
    });
  });
  app.use('/api', toConnect(relay));
  const server = http2.createServer(app as unknown as Parameters<typeof http2.createServer>[0] & object);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const before = upstream.requests.length;
  const status = await new Promise<number>((resolve, reject) => {
    // HTTP/2 needs no Content-Length: the DATA frames and END_STREAM frame the body.
    const stream = session.request({ ':method': 'POST', ':path': '/api/hook', 'content-type': 'application/octet-stream' });
    stream.on('response', (headers) => resolve(Number(headers[':status'])));
    stream.on('error', reject);
    stream.resume();
    stream.end('signed-payload');
  });
  session.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.is(status, 200, 'README: a Buffer req.body is sent "as is", whatever the content type');
  assert.is(upstream.requests.length, before + 1);
  assert.is(lastSeen().body.toString('utf8'), 'signed-payload');
});

test('Hono (relayHandler): a HEAD request is answered without @hono/node-server logging ERR_HTTP_HEADERS_SENT', async () => {
  const relay = await relayTo(upstream.url);
  const app = new Hono<NodeEnv>();
  const toApi = relayHandler(relay, { prefix: '/api' });
  app.all('/api', toApi);
  app.all('/api/*', toApi);
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  servers.push(server);
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const errors: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void errors.push(args[0]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<unknown>();
  const request = (method: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(`${url}/api/health`, { method, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('socket', (socket) => sockets.add(socket));
      req.on('error', reject);
      req.end();
    });
  try {
    assert.is(await request('HEAD'), 200);
    await delay(100);
    assert.is(await request('GET'), 200);
  } finally {
    console.error = consoleError;
    agent.destroy();
  }
  assert.is(sockets.size, 1, 'the HEAD left its keep-alive connection usable');
  assert.equal(errors.map((error) => (error as { code?: string }).code ?? String(error)), [], 'nothing logged for a HEAD request');
});

test('Fastify (relayPlugin): the prefix matches case-insensitively, as docs/frameworks.md says and as its WebSocket upgrades do', async () => {
  const relay = await relayTo(upstream.url);
  const app = fastify();
  await app.register(relayPlugin, { relay, prefix: '/api' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const { port } = app.server.address() as AddressInfo;
    const response = await fetchRaw(`http://127.0.0.1:${port}/API/users`);
    assert.is(response.status, 200, `/API/users: ${response.status} ${response.text}`);
    assert.is(lastSeen().url, '/users');
  } finally {
    await app.close();
  }
});

test('docs/frameworks.md http2Gateway: the bare mount (/api, /api?x=1) reaches the relay over HTTP/2 too', async () => {
  const relay = createRelay({ targetBaseUrl: upstream.url, mountPath: '/api' });
  relays.push(relay);
  const server = http2Gateway(relay, express(), tlsFixture);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`https://localhost:${(server.address() as AddressInfo).port}`, { ca: tlsFixture.cert });
  const status = (path: string) =>
    new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': path });
      stream.on('response', (headers) => resolve(Number(headers[':status'])));
      stream.on('error', reject);
      stream.resume();
    });
  try {
    assert.is(await status('/api/items'), 200);
    // The relay is mounted at /api and maps /api itself (README: "/auth → /"); the excerpt's
    // startsWith('/api/') sends the bare mount to Express, which answers HTTP/2 with 505.
    assert.is(await status('/api?x=1'), 200);
    assert.is(await status('/api'), 200);
  } finally {
    session.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test.run();
