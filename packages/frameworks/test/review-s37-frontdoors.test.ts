// Review s37 (front doors): what a Fastify 5, Koa 3 or Hono (@hono/node-server) user expects of a
// relay mounted in their app, beyond the package's own tests: the head of the upstream answer
// (Set-Cookie lines, repeated fields, reason phrase, 204/304/HEAD), request bodies Fastify would
// refuse or limit, a client that leaves reaching the upstream, and Hono's own WebSocket support
// on the same server.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, upgradeWebSocket } from '@hono/node-server';
import fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import Koa from 'koa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { routeUpgrades } from '@relay/connect-adapter';
import { createRelay, type Relay } from '@relay/core';
import { close, listen, memoryLogger, sendRaw, startUpstream, waitFor, type MemoryLogger, type Upstream } from '@relay/testkit';
import { websocket } from '@relay/ws';
import { relayPlugin } from '../src/fastify.js';
import { relayHandler, type NodeEnv } from '../src/hono.js';
import { relayMiddleware } from '../src/koa.js';

const MiB = 1024 * 1024;

let upstream: Upstream;
let wss: WebSocketServer;
/** Upstream requests whose client side closed before the upstream answered (`/hang`). */
const hangClosed: string[] = [];
let uploaded = 0;
const relays: Relay[] = [];
const logger: MemoryLogger = memoryLogger();
let fastifyApp: FastifyInstance;
let koaServer: Server;
let honoServer: Server;
const bases: Record<'fastify' | 'koa' | 'hono', string> = { fastify: '', koa: '', hono: '' };

function newRelay(): Relay {
  const relay = createRelay({ targetBaseUrl: upstream.url, websocket: websocket(), logger });
  relays.push(relay);
  return relay;
}

test.before(async () => {
  upstream = await startUpstream(
    (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/hang') {
        req.resume();
        res.on('close', () => hangClosed.push(req.headers['x-door'] as string));
        return;
      }
      if (path === '/upload') {
        let size = 0;
        req.on('data', (chunk: Buffer) => (size += chunk.length));
        req.on('end', () => {
          uploaded = size;
          res.end(JSON.stringify({ size, type: req.headers['content-type'] ?? null }));
        });
        return;
      }
      if (path === '/echo') {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => res.end(JSON.stringify({ method: req.method, url: req.url, type: req.headers['content-type'] ?? null, body: Buffer.concat(chunks).toString() })));
        return;
      }
      req.resume();
      if (path === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('part one|');
        res.addTrailers({ 'x-checksum': 'abc123' });
        return void res.end('part two');
      }
      if (path === '/nocontent') {
        res.writeHead(204, { 'x-done': 'yes' });
        return void res.end();
      }
      if (path === '/cached') {
        res.writeHead(304, { etag: '"e1"' });
        return void res.end();
      }
      res.setHeader('set-cookie', ['sid=1; Path=/; HttpOnly', 'theme=dark; Path=/']);
      res.setHeader('x-multi', ['one', 'two']);
      res.setHeader('content-length', 5);
      res.writeHead(203, 'Custom Reason');
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    },
    { streaming: true },
  );
  wss = new WebSocketServer({ server: upstream.server });
  wss.on('connection', (socket, req) => socket.on('message', (data) => socket.send(`${req.url} ${String(data)}`)));

  fastifyApp = fastify();
  await fastifyApp.register(relayPlugin, { relay: newRelay(), prefix: '/api' });
  bases.fastify = await fastifyApp.listen({ port: 0, host: '127.0.0.1' });

  const koaRelay = newRelay();
  await koaRelay.startup();
  const koa = new Koa();
  koa.use(relayMiddleware(koaRelay, { prefix: '/api' }));
  koaServer = createServer(koa.callback());
  bases.koa = await listen(koaServer);
  routeUpgrades(koaServer, { '/api': koaRelay });

  const honoRelay = newRelay();
  await honoRelay.startup();
  const hono = new Hono<NodeEnv>();
  const toApi = relayHandler(honoRelay, { prefix: '/api' });
  hono.all('/api', toApi);
  hono.all('/api/*', toApi);
  honoServer = await new Promise<Server>((resolve) => {
    const started = serve({ fetch: hono.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started as Server));
  });
  bases.hono = `http://127.0.0.1:${(honoServer.address() as AddressInfo).port}`;
  routeUpgrades(honoServer, { '/api': honoRelay });
});

test.after(async () => {
  await fastifyApp.close();
  await close(koaServer);
  await close(honoServer);
  await Promise.all(relays.map((relay) => relay.shutdown({ timeout: 500 })));
  for (const client of wss.clients) client.terminate();
  await new Promise((resolve) => wss.close(resolve));
  await upstream.close();
});

const doors = ['fastify', 'koa', 'hono'] as const;

test('every door: the upstream reason phrase, both Set-Cookie lines, repeated fields; HEAD keeps Content-Length with no body; 204 and 304 carry no body', async () => {
  // RFC 9110 §5.3 (Set-Cookie never combined), §9.3.2 (HEAD), §15.3.5 / §15.4.5 (204/304 without content);
  // peers (@fastify/reply-from, http-proxy) relay the reason phrase and every Set-Cookie line.
  for (const door of doors) {
    const port = Number(new URL(bases[door]).port);
    const get = await sendRaw(port, 'GET /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(get, /^HTTP\/1\.1 203 Custom Reason\r\n/, `${door}: status line`);
    assert.is(get.match(/^set-cookie: /gim)?.length, 2, `${door}: two Set-Cookie lines\n${get}`);
    assert.match(get, /\r\n\r\nhello$/, door);
    assert.match(get, /^x-multi: one(, two|\r\nx-multi: two)\r$/im, door);
    const head = await sendRaw(port, 'HEAD /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 203 /, `${door}: HEAD`);
    assert.match(head, /^content-length: 5\r$/im, `${door}: HEAD keeps Content-Length`);
    assert.ok(head.endsWith('\r\n\r\n'), `${door}: HEAD has no body\n${JSON.stringify(head)}`);
    const empty = await sendRaw(port, 'GET /api/nocontent HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(empty, /^HTTP\/1\.1 204 /, door);
    assert.ok(empty.endsWith('\r\n\r\n') && !/transfer-encoding|content-length/i.test(empty), `${door}: 204\n${empty}`);
    const cached = await sendRaw(port, 'GET /api/cached HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(cached, /^HTTP\/1\.1 304 /, door);
    assert.match(cached, /^etag: "e1"\r$/im, door);
    assert.ok(cached.endsWith('\r\n\r\n') && !/transfer-encoding/i.test(cached), `${door}: 304\n${cached}`);
  }
});

test('every door: response trailers reach a client that sent TE: trailers', async () => {
  // RFC 9110 §6.5 / RFC 9112 §7.1.2: a proxy forwards trailer fields to a client that accepts them.
  for (const door of doors) {
    const raw = await sendRaw(Number(new URL(bases[door]).port), 'GET /api/trailers HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nConnection: close\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 200 /, door);
    assert.match(raw, /part one\|/, door);
    assert.match(raw, /\r\n0\r\nx-checksum: abc123\r\n\r\n$/i, `${door}\n${raw}`);
  }
});

test('every door: a client that leaves before the answer closes the upstream request at once', async () => {
  // Issue 22 brief / nginx proxy_ignore_client_abort off: the upstream attempt ends when the client leaves.
  for (const door of doors) {
    const url = new URL(`${bases[door]}/api/hang`);
    const req = httpRequest(url, { method: 'GET', headers: { 'x-door': door }, agent: false });
    req.on('error', () => {});
    req.end();
    assert.ok(await waitFor(() => upstream.requests.some((seen) => seen.url === '/hang' && seen.headers['x-door'] === door), 3000), `${door}: reached the upstream`);
    req.destroy();
    assert.ok(await waitFor(() => hangClosed.includes(door), 3000), `${door}: the upstream request was closed when the client left`);
  }
  assert.ok(await waitFor(() => relays.every((relay) => relay.inFlight === 0), 3000), 'nothing stays in flight');
});

test('Fastify: a 12 MiB JSON upload (over Fastify’s 1 MiB bodyLimit) streams to the upstream whole, as documented', async () => {
  // docs/frameworks.md: "the plugin's routes get the raw body, so bodyLimit does not apply to them".
  const port = Number(new URL(bases.fastify).port);
  const answer = await new Promise<string>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/api/upload', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 12 * MiB }, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk));
      res.on('end', () => resolve(`${res.statusCode} ${text}`));
    });
    const chunk = Buffer.alloc(256 * 1024, 32);
    let sent = 0;
    const pump = () => {
      while (sent < 12 * MiB) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  assert.is(answer, `200 ${JSON.stringify({ size: 12 * MiB, type: 'application/json' })}`);
  assert.is(uploaded, 12 * MiB);
});

test('Fastify: any media type Fastify can parse is relayed as sent; one it cannot parse at all (text, an empty value) gets its 415 (documented, as @fastify/http-proxy)', async () => {
  // The plugin relays from the handler, so every app hook guards it (next test); Fastify's own media-type check
  // runs before handlers. docs/frameworks.md says so.
  const port = Number(new URL(bases.fastify).port);
  const outcomes: string[] = [];
  for (const type of ['text', '', 'application/json; charset', 'text/plain; charset="utf-8', 'multipart/form-data']) {
    const raw = await sendRaw(port, `POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: ${type}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
    const status = raw.slice(9, 12);
    const echo = status === '200' ? (JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { type: string; body: string }) : null;
    outcomes.push(echo === null ? `${type} → ${status}` : `${echo.type} → ${echo.body}`);
  }
  assert.equal(outcomes, ['text → 415', ' → 415', 'application/json; charset → hello', 'text/plain; charset="utf-8 → hello', 'multipart/form-data → hello']);
});

test('Fastify: an app-level preHandler auth hook (as @fastify/auth adds) guards the relayed routes: refused requests never reach the upstream', async () => {
  const seenBefore = upstream.requests.length;
  const app = fastify();
  app.addHook('preHandler', async (request, reply) => {
    if (request.headers.authorization !== 'Bearer ok') await reply.code(401).send({ error: 'unauthorized' });
  });
  await app.register(relayPlugin, { relay: newRelay(), prefix: '/api' });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const port = Number(new URL(base).port);
    const refused = await sendRaw(port, 'POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
    assert.match(refused, /^HTTP\/1\.1 401 /);
    assert.is(upstream.requests.length, seenBefore, 'the refused request reached the upstream');
    const allowed = await sendRaw(port, 'POST /api/echo HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ok\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
    assert.match(allowed, /^HTTP\/1\.1 200 /);
  } finally {
    await app.close();
  }
});

test('Hono: relayed WebSockets coexist with @hono/node-server’s own upgradeWebSocket routes; the app’s error handler sees no error for them', async () => {
  // @hono/node-server 2 serves Hono's upgradeWebSocket() on the same server (serve({ websocket })); the README
  // says relayHandler + routeUpgrades give "HTTP and WebSocket" under the prefix while the app keeps its own routes.
  const relay = newRelay();
  await relay.startup();
  const errors: string[] = [];
  const app = new Hono<NodeEnv>();
  app.onError((error, c) => {
    errors.push(`${c.req.path}: ${error.message}`);
    return c.text('error', 500);
  });
  app.get(
    '/own',
    upgradeWebSocket(() => ({
      onMessage(event, ws) {
        ws.send(`own ${String(event.data)}`);
      },
    })),
  );
  const toApi = relayHandler(relay, { prefix: '/api' });
  app.all('/api', toApi);
  app.all('/api/*', toApi);
  const ownWss = new WebSocketServer({ noServer: true });
  const server = await new Promise<Server>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1', websocket: { server: ownWss } }, () => resolve(started as Server));
  });
  routeUpgrades(server, { '/api': relay });
  const base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const talk = async (path: string): Promise<string> => {
    const socket = new WebSocket(`${base}${path}`);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send('hi');
    const message = await new Promise<string>((resolve) => socket.once('message', (data) => resolve(String(data))));
    socket.close();
    await new Promise((resolve) => socket.once('close', resolve));
    return message;
  };
  try {
    assert.is(await talk('/api/room'), '/room hi');
    assert.is(await talk('/own'), 'own hi');
    assert.equal(errors, [], 'no request reached the app’s error handler');
  } finally {
    for (const client of ownWss.clients) client.terminate();
    await close(server);
    await relay.shutdown({ timeout: 500 });
  }
});

test('Fastify: headers an onRequest hook set with reply.header() (what @fastify/cors does) reach the client on the relayed answer', async () => {
  // @fastify/cors sets Access-Control-Allow-Origin with reply.header() in onRequest; @fastify/http-proxy
  // (reply-from: reply.send of the upstream stream) keeps such headers. docs/frameworks.md only says
  // onSend/onResponse do not run for the plugin's routes; headers set before the handler are the app's.
  const app = fastify();
  app.addHook('onRequest', (_request, reply, done) => {
    reply.header('access-control-allow-origin', 'https://app.example');
    reply.header('x-request-id', 'r-1');
    // docs/frameworks.md: on a clash the upstream's value is sent; body headers are never the app's.
    reply.header('x-multi', 'app');
    reply.header('content-length', '99');
    reply.header('content-type', 'application/json');
    done();
  });
  await app.register(relayPlugin, { relay: newRelay(), prefix: '/api' });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const raw = await sendRaw(Number(new URL(base).port), 'GET /api/x HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example\r\nConnection: close\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 203 /);
    assert.match(raw, /^access-control-allow-origin: https:\/\/app\.example\r$/im, raw);
    assert.match(raw, /^x-request-id: r-1\r$/im);
    assert.not.match(raw, /^x-multi: app/im, 'the upstream wins a clash');
    assert.match(raw, /^content-length: 5\r$/im);
    assert.not.match(raw, /^content-type:/im, 'no Content-Type the upstream did not send');
  } finally {
    await app.close();
  }
});

test('Hono: headers that middleware before relayHandler set (cors(), requestId()) reach the client on the relayed answer', async () => {
  // Hono's cors() and requestId() set their headers before next(); README: relayHandler goes "after whatever
  // middleware you want around it". Koa's ctx.set() and Express's res.setHeader() before the relay are kept.
  const relay = newRelay();
  await relay.startup();
  const app = new Hono<NodeEnv>();
  app.use('/api/*', cors({ origin: 'https://app.example' }));
  app.use('/api/*', requestId({ generator: () => 'r-1' }));
  app.use('/api/*', async (c, next) => {
    c.header('x-multi', 'app');
    c.header('content-type', 'application/json');
    c.header('set-cookie', 'a=1', { append: true });
    c.header('set-cookie', 'b=2', { append: true });
    await next();
  });
  app.all('/api/*', relayHandler(relay, { prefix: '/api' }));
  const server = await new Promise<Server>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started as Server));
  });
  try {
    const raw = await sendRaw((server.address() as AddressInfo).port, 'GET /api/x HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example\r\nConnection: close\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 203 /);
    assert.match(raw, /^access-control-allow-origin: https:\/\/app\.example\r$/im, raw);
    assert.match(raw, /^x-request-id: r-1\r$/im);
    assert.not.match(raw, /^x-multi: app/im, 'the upstream wins a clash');
    assert.not.match(raw, /^content-type:/im, 'no Content-Type the upstream did not send');
    // Each cookie is its own line (RFC 6265 §3): the app's two and the upstream's two all go, as Fastify's reply sends them.
    assert.equal(raw.match(/^set-cookie: [^=]+/gim)?.map((line) => line.slice('set-cookie: '.length)), ['a', 'b', 'sid', 'theme'], raw);
  } finally {
    await close(server);
    await relay.shutdown({ timeout: 500 });
  }
});

test('Koa: a header set with ctx.set() before relayMiddleware reaches the client on the relayed answer', async () => {
  // Parity check for the two tests above: Koa writes ctx.set() to the Node response, which the relay's head extends.
  const relay = newRelay();
  await relay.startup();
  const app = new Koa();
  app.use(async (ctx, next) => {
    ctx.set('access-control-allow-origin', 'https://app.example');
    await next();
  });
  app.use(relayMiddleware(relay, { prefix: '/api' }));
  const server = createServer(app.callback());
  const base = await listen(server);
  try {
    const raw = await sendRaw(Number(new URL(base).port), 'GET /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(raw, /^access-control-allow-origin: https:\/\/app\.example\r$/im, raw);
  } finally {
    await close(server);
    await relay.shutdown({ timeout: 500 });
  }
});

test('every door: an absolute-form request target under the prefix is relayed, as relay.handle relays it', async () => {
  // RFC 9112 §3.2.2: "a server MUST accept the absolute-form in requests". relay.handle serves
  // "GET http://a/api/x" as /api/x; Koa's ctx.path and Hono's router both see /api/x, yet the front door
  // passes it on (Koa) or answers 404 from inside the route Hono chose (Hono).
  for (const door of doors) {
    const raw = await sendRaw(Number(new URL(bases[door]).port), 'GET http://a/api/x?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(raw, /^HTTP\/1\.1 203 /, `${door}: ${raw.split('\r\n')[0]}`);
  }
});

test('relay.fetch as a Hono handler on @hono/node-server: the upload reaches the upstream, both Set-Cookie lines come back, and a client that leaves aborts the upstream', async () => {
  // Issue 22: relay.fetch "works in a Next.js route handler, in Hono"; docs/frameworks.md: aborting request.signal aborts the upstream.
  const relay = createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', logger });
  relays.push(relay);
  const app = new Hono();
  app.all('/api/*', (c) => relay.fetch(c.req.raw));
  const server = await new Promise<Server>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started as Server));
  });
  const port = (server.address() as AddressInfo).port;
  try {
    const posted = await sendRaw(port, 'POST /api/echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello');
    assert.match(posted, /"body":"hello"/);
    const got = await sendRaw(port, 'GET /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.is(got.match(/^set-cookie: /gim)?.length, 2, got);
    const req = httpRequest({ host: '127.0.0.1', port, path: '/api/hang', headers: { 'x-door': 'hono-fetch' }, agent: false });
    req.on('error', () => {});
    req.end();
    assert.ok(await waitFor(() => upstream.requests.some((seen) => seen.headers['x-door'] === 'hono-fetch'), 3000));
    req.destroy();
    assert.ok(await waitFor(() => hangClosed.includes('hono-fetch'), 3000), 'the upstream request was closed when the client left');
    assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
  } finally {
    await close(server);
    await relay.shutdown({ timeout: 500 });
  }
});

test('every door: the relay logged no error for the exchanges above', () => {
  const errors = logger.lines.filter((line) => line.level === 'error');
  assert.equal(errors, []);
});

test.run();
