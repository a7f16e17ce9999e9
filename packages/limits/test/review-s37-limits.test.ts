// Review s37 of @relay/limits (issue 21, and issue 23's plain function): Redis unreachable when the relay
// starts and restarted mid-run on the same port, the plain createLimiter() against the rateLimit() stage
// on one table of policies (memory and Redis), concurrency slots on the paths the earlier tests left
// out (a client gone before the upstream answered, a 503 retried inside retry()), and a refused upload
// that must never reach the upstream. Real redis-server, real sockets.
import { once } from 'node:events';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { closedPort, delay, fetchRaw, memoryLogger, serveRelay, startRedis, startUpstream, waitFor, type RedisServer } from '@relay/testkit';
import { concurrencyLimit, createLimiter, memoryStore, rateLimit, type LimitStore } from '../src/index.js';
import { redisStore } from '../src/redis-store.js';

test('Redis down when the relay starts: failOpen lets requests through at once with an error line, failOpen: false answers 503; redis-server coming up (and back after a kill, same port) makes the limit count', async () => {
  // README "When Redis is unreachable": calls fail at once while ioredis is not connected, then failOpen decides; logged at error.
  const port = await closedPort();
  const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => {});
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const store = redisStore({ client, timeout: 2000 });
  const open = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [rateLimit({ name: 'open', points: 2, duration: 60_000, store })] }));
  const closed = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [rateLimit({ name: 'closed', points: 2, duration: 60_000, store, failOpen: false })] }));
  let server: RedisServer | null = null;
  try {
    const started = Date.now();
    const letThrough = await Promise.all(Array.from({ length: 5 }, () => fetchRaw(open.url)));
    const refused = await Promise.all(Array.from({ length: 3 }, () => fetchRaw(closed.url)));
    assert.ok(Date.now() - started < 1500, 'nothing waits for a Redis that is not there');
    assert.equal(letThrough.map((r) => r.status), [200, 200, 200, 200, 200]);
    assert.ok(letThrough.every((r) => r.headers.ratelimit === undefined), 'uncounted, so no fields');
    assert.equal(refused.map((r) => r.status), [503, 503, 503]);
    assert.is(refused[0]!.headers['retry-after'], '1');
    assert.is(refused[0]!.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(refused[0]!.text, /^503 Service Unavailable: the rate limit cannot be checked, retry later \(ERR_LIMIT_STORE\)/);
    const lines = logger.lines.filter((line) => line.message.startsWith('rate limit store failed'));
    assert.ok(lines.length >= 2 && lines.every((line) => line.level === 'error' && line.fields.store === 'redis'));
    assert.is(upstream.requests.length, 5, 'the 503s never reached the upstream');

    server = await startRedis({ port });
    assert.ok(await waitFor(() => client.status === 'ready', 10_000), 'ioredis connected once the server came up');
    assert.equal([(await fetchRaw(closed.url)).status, (await fetchRaw(closed.url)).status, (await fetchRaw(closed.url)).status], [200, 200, 429]);
    await server.stop();
    assert.is((await fetchRaw(closed.url)).status, 503, 'killed: failOpen false answers 503');
    server = await startRedis({ port });
    assert.ok(await waitFor(() => client.status === 'ready', 10_000), 'reconnected after the restart');
    // A fresh server has lost the buckets and the Lua script (NOSCRIPT): the script must be loaded again.
    const again = await fetchRaw(closed.url);
    assert.is(again.status, 200);
    assert.is(again.headers.ratelimit, '"closed";r=1;t=30');
  } finally {
    client.disconnect();
    if (server !== null) await server.stop();
    await open.close();
    await closed.close();
    await upstream.close();
  }
});

/**
 * The policies of the table: fractional intervals, burst below and above points, a month. Every
 * interval is seconds long: the plain call and the stage's request are a few ms apart, and on a
 * loaded machine a 250 ms interval refilled between them (a 200 where the plain call said 429).
 */
const policies = [
  { points: 3, duration: 10_000, burst: 1 },
  { points: 7, duration: 10_000, burst: 3 },
  { points: 1, duration: 3_600_000 },
  { points: 100, duration: 60_000, burst: 20 },
  { points: 2, duration: 5_000, burst: 4 },
  { points: 5, duration: 900_000 },
  { points: 10, duration: 30 * 86_400_000 },
];

test('one table, both ways: createLimiter().headers() equals the rateLimit() stage\'s fields and status for each request, in memory and in Redis', async () => {
  // Issue 23: "the plain functions give the same results as the stages on the same inputs (one table of cases run both ways)".
  const redis = await startRedis();
  const client = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await once(client, 'ready');
  const upstream = await startUpstream();
  try {
    for (const [index, policy] of policies.entries()) {
      for (const kind of ['memory', 'redis'] as const) {
        const store = (): LimitStore => (kind === 'memory' ? memoryStore() : redisStore({ client, prefix: `t${index}:${Math.random()}:`, timeout: 5000 }));
        const name = `p${index}`;
        const plain = createLimiter({ ...policy, name, store: store() });
        const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ ...policy, name, key: 'route', store: store() })] }));
        try {
          const count = (policy.burst ?? policy.points) + 2;
          for (let i = 0; i < count; i++) {
            const decision = await plain.consume('route');
            const response = await fetchRaw(served.url);
            const fields = plain.headers(decision);
            const seen = { 'ratelimit-policy': response.headers['ratelimit-policy'], ratelimit: response.headers.ratelimit, ...(response.status === 429 ? { 'retry-after': response.headers['retry-after'] } : {}) };
            assert.is(response.status, decision.allowed ? 200 : 429, `${kind} ${JSON.stringify(policy)} request ${i}`);
            assert.equal(seen, fields, `${kind} ${JSON.stringify(policy)} request ${i}`);
          }
        } finally {
          await served.close();
        }
      }
    }
  } finally {
    client.disconnect();
    await upstream.close();
    await redis.stop();
  }
});

test('concurrencyLimit: a client that leaves before the upstream answered frees its slot at once; a 503 retried inside retry() leaves no slot behind', async () => {
  // README: "a client that leaves frees it at once", "a request that fails before a response frees it at once".
  const held: ServerResponse[] = [];
  let calls = 0;
  const upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    calls++;
    if (req.url === '/held') held.push(res);
    else if (req.url === '/flaky' && calls % 2 === 1) res.writeHead(503, { 'content-length': '4' }).end('busy');
    else res.end('ok');
  });
  const gone = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [concurrencyLimit({ max: 1, key: 'route' })] }));
  const retried = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, maxBackoff: 10 }), concurrencyLimit({ max: 1, key: 'route' })] }));
  try {
    const leaving = request(`${gone.url}/held`, { agent: false });
    leaving.on('error', () => {});
    leaving.end();
    assert.ok(await waitFor(() => held.length === 1, 10_000), 'the request reached the upstream');
    leaving.destroy();
    let status = 0;
    for (let i = 0; i < 40 && status !== 200; i++) {
      await delay(50);
      status = (await fetchRaw(`${gone.url}/x`)).status;
    }
    assert.is(status, 200, 'the slot of the client that left came back before its upstream answered');
    for (let i = 0; i < 4; i++) {
      const response = await fetchRaw(`${retried.url}/flaky`);
      assert.is(response.status, 200, `request ${i}: its first attempt's 503 was retried, and no slot stayed taken`);
    }
  } finally {
    for (const res of held) res.end();
    await gone.close();
    await retried.close();
    await upstream.close();
  }
});

test('a refused upload never reaches the upstream: 429 text/plain, no-store, the documented body, the connection closed rather than the body read', async () => {
  // Issue 21: "where abuse is stopped"; README "Errors it raises".
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ points: 1, duration: 60_000 })] }));
  try {
    assert.is((await fetchRaw(served.url, { method: 'POST', body: 'first' })).status, 200);
    const refused = await fetchRaw(served.url, { method: 'POST', body: Buffer.alloc(256 * 1024, 120) });
    assert.is(refused.status, 429);
    assert.is(refused.headers['content-type'], 'text/plain; charset=utf-8');
    assert.is(refused.headers['cache-control'], 'no-store');
    assert.is(refused.headers['retry-after'], '60');
    assert.is(refused.text, '429 Too Many Requests: the rate limit is exceeded, retry later (ERR_RATE_LIMITED)\n');
    assert.is(upstream.requests.length, 1, 'only the allowed request reached the upstream');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
