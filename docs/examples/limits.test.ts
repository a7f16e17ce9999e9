import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { close, fetchRaw, listen, memoryLogger, serveRelay, startRedis, startUpstream } from '@relay/testkit';
import { chatGateway, limitedApi, loginAllowed, partnerApi, sharedLimit, trialLimit } from './limits.js';

test('limitedApi: 20 at once, then 429 with Retry-After and the IETF fields; GET /api/x reaches the upstream', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(limitedApi(upstream.url));
  try {
    // All at once: a token comes back every 600 ms, so a slow machine may let one or two more through.
    const started = Date.now();
    const statuses = await Promise.all(Array.from({ length: 30 }, () => fetchRaw(`${served.url}/api/x`)));
    const extra = Math.ceil((Date.now() - started) / 600);
    const allowed = statuses.filter((r) => r.status === 200).length;
    assert.ok(allowed >= 20 && allowed <= 20 + extra, `${allowed} allowed`);
    const refused = statuses.find((r) => r.status === 429)!;
    assert.is(refused.headers['retry-after'], '1', 'a token every 600 ms');
    assert.is(refused.headers['ratelimit-policy'], '"default";q=20;w=12');
    assert.match(String(refused.headers.ratelimit), /^"default";r=0;t=1[12]$/);
    assert.ok(statuses.some((r) => r.headers.ratelimit === '"default";r=19;t=1'), 'the first one left 19');
    assert.is(upstream.requests.length, allowed);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('partnerApi: 10 per API key per second, the route 500, 4 in flight per key', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(partnerApi(upstream.url));
  try {
    const as = (key: string) => fetchRaw(served.url, { headers: { 'x-api-key': key } });
    const started = Date.now();
    const a = await Promise.all(Array.from({ length: 30 }, () => as('a').then((r) => r.status)));
    const extra = Math.ceil((Date.now() - started) / 100); // a token every 100 ms
    assert.ok(a.filter((s) => s === 200).length <= 10 + extra, 'about 10 for one key');
    assert.ok(a.includes(429), 'the rest refused');
    const b = await as('b');
    assert.is(b.status, 200, 'another key has its own bucket');
    assert.is(b.headers['ratelimit-policy'], '"global";q=500;w=1, "per-key";q=10;w=1', 'the inner limit comes first');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('sharedLimit: counted in a real Redis; when Redis goes away, requests go through and it is logged', async () => {
  const redisServer = await startRedis();
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const { api, redis } = sharedLimit(upstream.url, `redis://127.0.0.1:${redisServer.port}`, logger);
  await once(redis, 'ready');
  const served = await serveRelay(api);
  try {
    // On a busy machine a Redis call may miss its 200 ms and fail open (no headers): take the first counted one.
    let counted;
    for (let i = 0; i < 20 && counted === undefined; i++) {
      const response = await fetchRaw(served.url);
      if (response.headers.ratelimit !== undefined) counted = response;
    }
    assert.match(String(counted?.headers.ratelimit), /^"api";r=99\d;t=1$/, 'a token used, back in 60 ms');
    assert.equal(await redis.keys('relay:limits:api:*'), ['relay:limits:api:127.0.0.1']);
    await redisServer.stop();
    const after = await fetchRaw(served.url);
    assert.is(after.status, 200, 'failOpen: true');
    assert.ok(logger.lines.some((line) => line.message.startsWith('rate limit store failed')));
  } finally {
    redis.disconnect();
    await served.close();
    await upstream.close();
    await redisServer.stop();
  }
});

test('chatGateway: three sessions per client, the fourth refused with 429', async () => {
  const upstreamServer = http.createServer();
  const wss = new WebSocketServer({ server: upstreamServer });
  wss.on('connection', (ws) => ws.on('error', () => {}));
  const upstreamUrl = await listen(upstreamServer);
  const { chat, server } = chatGateway(upstreamUrl, 0);
  await chat.startup();
  if (!server.listening) await once(server, 'listening');
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const open = () =>
    new Promise<WebSocket | number>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('open', () => resolve(ws));
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('error', reject);
    });
  const sessions: WebSocket[] = [];
  try {
    for (let i = 0; i < 3; i++) sessions.push((await open()) as WebSocket);
    assert.ok(sessions.every((ws) => ws instanceof WebSocket));
    assert.is(await open(), 429);
  } finally {
    for (const ws of sessions) ws.terminate();
    await chat.shutdown();
    await close(server);
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    await close(upstreamServer);
  }
});

test('trialLimit: never refuses, logs what it would refuse', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const served = await serveRelay(trialLimit(upstream.url, logger));
  try {
    for (let i = 0; i < 6; i++) assert.is((await fetchRaw(served.url)).status, 200);
    assert.ok(logger.lines.some((line) => line.level === 'warn' && line.message.includes('dry run')));
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('loginAllowed: five attempts per user name, then 429 with the IETF fields', async () => {
  const server = http.createServer(async (req, res) => {
    if (await loginAllowed(String(req.headers['x-user']), res)) res.end('ok\n');
  });
  const url = await listen(server);
  try {
    const tries = [];
    for (let i = 0; i < 6; i++) tries.push(await fetchRaw(url, { headers: { 'x-user': i % 2 === 0 ? 'Ann' : 'ann' } }));
    assert.equal(tries.map((r) => r.status), [200, 200, 200, 200, 200, 429]);
    assert.is(tries[5]!.headers['retry-after'], '180');
    assert.is(tries[5]!.headers.ratelimit, '"login";r=0;t=900');
  } finally {
    await close(server);
  }
});

test.run();
