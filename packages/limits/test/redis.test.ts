import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { createRelay } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startRedis, startUpstream } from '@relay/testkit';
import { createLimiter, rateLimit } from '../src/index.js';
import { redisStore } from '../src/redis-store.js';
import { refundAfterRefill } from './refund-helpers.js';


const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/redis-relay.ts', import.meta.url));

async function client(port: number): Promise<Redis> {
  const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  redis.on('error', () => {}); // reconnect attempts after the server is killed
  await once(redis, 'ready');
  return redis;
}

/** Starts the fixture relay in its own process; resolves with its port. */
function startInstance(upstreamUrl: string, redisPort: number, points: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', `${root}scripts/register.mjs`, fixture, upstreamUrl, String(redisPort), String(points)], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the relay process did not start')), 30_000);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /port (\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`the relay process exited with ${code}`)));
  });
}

function get(port: number, agent: Agent): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(30_000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

test('the token bucket runs atomically in Redis: N then refusals, with the same numbers as the memory store', async () => {
  const redis = await startRedis();
  const connection = await client(redis.port);
  try {
    const limiter = createLimiter({ name: 'unit', points: 3, duration: 60_000, store: redisStore({ client: connection, timeout: 5000 }) });
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await limiter.consume('k'));
    assert.equal(decisions.map((d) => d.allowed), [true, true, true, false]);
    assert.equal(decisions.map((d) => d.remaining), [2, 1, 0, 0]);
    assert.ok(Math.abs(decisions[0]!.resetMs - 20_000) < 1000, `full again in one interval, got ${decisions[0]!.resetMs}`);
    assert.ok(decisions[3]!.retryAfterMs > 18_000 && decisions[3]!.retryAfterMs <= 20_000, `next token in about 20 s, got ${decisions[3]!.retryAfterMs}`);
    assert.ok(decisions[3]!.resetMs > 58_000 && decisions[3]!.resetMs <= 60_000);
    assert.is((await limiter.consume('other')).allowed, true, 'another key, another bucket');
    const ttl = await connection.pttl('relay:limits:unit:k');
    assert.ok(ttl > 50_000 && ttl <= 60_000, `the key expires when its bucket is full again, got ${ttl}`);
    assert.equal(limiter.headers(decisions[3]!), { 'ratelimit-policy': '"unit";q=3;w=60', ratelimit: '"unit";r=0;t=60', 'retry-after': '20' });
  } finally {
    connection.disconnect();
    await redis.stop();
  }
});

test('refund in Redis: one atomic script gives the token back (the bucket as before the take), a full bucket\'s key is deleted, an unknown key is left alone', async () => {
  const redis = await startRedis();
  const connection = await client(redis.port);
  try {
    const bucket = redisStore({ client: connection, timeout: 5000 }).bind({ name: 'unit', points: 3, duration: 60_000, burst: 3 });
    const remaining = async () => {
      const decision = await bucket.take('k');
      return decision.allowed ? decision.remaining : -1;
    };
    const [, , third] = [await bucket.take('k'), await bucket.take('k'), await bucket.take('k')];
    assert.equal([third.remaining, await remaining()], [0, -1]);
    await bucket.refund!('k', third);
    const again = await bucket.take('k');
    assert.equal([again.allowed, again.remaining, await remaining()], [true, 0, -1], 'one token given back, taken again');
    const ttl = await connection.pttl('relay:limits:unit:k');
    await bucket.refund!('k', again);
    const shorter = await connection.pttl('relay:limits:unit:k');
    assert.ok(ttl - shorter > 18_000 && ttl - shorter < 22_000, `the key expires one interval (20 s) sooner: ${ttl} then ${shorter}`);
    await bucket.refund!('k', again);
    await bucket.refund!('k', again);
    assert.is(await connection.exists('relay:limits:unit:k'), 0, 'back to full: deleted, as an expired key');
    await bucket.refund!('k', again);
    await bucket.refund!('never-seen', again);
    assert.is(await connection.exists('relay:limits:unit:never-seen'), 0, 'nothing written for a key it does not hold');
    assert.is(await remaining(), 2, 'a refund past full gives nothing more: the bucket holds 3');
    const before = await connection.get('relay:limits:unit:k');
    await bucket.refund!('k', { ...again, tat: performance.now() - 1 });
    assert.is(await connection.get('relay:limits:unit:k'), before, 'a token the refill has passed is owed no more: nothing given back');
  } finally {
    connection.disconnect();
    await redis.stop();
  }
});

test('several limits in Redis: a request the per-key limit refuses spends nothing of the global one', async () => {
  const redis = await startRedis();
  const connection = await client(redis.port);
  const upstream = await startUpstream();
  const store = redisStore({ client: connection, timeout: 5000 });
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        rateLimit({ name: 'global', key: 'route', points: 4, duration: 60_000, store }),
        rateLimit({ name: 'per-key', key: { header: 'x-api-key' }, points: 1, duration: 60_000, store }),
      ],
    }),
  );
  try {
    const abusive: number[] = [];
    for (let i = 0; i < 6; i++) abusive.push((await fetchRaw(served.url, { headers: { 'x-api-key': 'abuser' } })).status);
    assert.equal(abusive, [200, 429, 429, 429, 429, 429]);
    const other = await fetchRaw(served.url, { headers: { 'x-api-key': 'honest' } });
    assert.is(other.status, 200);
    assert.match(String(other.headers.ratelimit), /"global";r=2;/, 'global: 4 - abuser\'s one let through - this one');
  } finally {
    connection.disconnect();
    await served.close();
    await upstream.close();
    await redis.stop();
  }
});

test('two relays in two processes sharing one redis-server enforce one combined limit (±2 %) under 2 000 requests', async () => {
  const redis = await startRedis();
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 0 }).end());
  const points = 1000;
  const instances = await Promise.all([startInstance(upstream.url, redis.port, points), startInstance(upstream.url, redis.port, points)]);
  const agent = new Agent({ keepAlive: true, maxSockets: 200 });
  try {
    const statuses = await Promise.all(Array.from({ length: 2000 }, (_, i) => get(instances[i % 2]!.port, agent)));
    const allowed = statuses.filter((status) => status === 200).length;
    const refused = statuses.filter((status) => status === 429).length;
    assert.is(allowed + refused, 2000, `every request answered 200 or 429 (others: ${statuses.filter((s) => s !== 200 && s !== 429).slice(0, 5)})`);
    assert.ok(Math.abs(allowed - points) <= points * 0.02, `${allowed} allowed for a combined limit of ${points}`);
    assert.is(upstream.requests.length, allowed);
    console.log(`two instances, one Redis, a combined limit of ${points}: ${allowed} of 2000 requests allowed`);
  } finally {
    agent.destroy();
    for (const { child } of instances) child.stdin!.end();
    await Promise.all(instances.map(({ child }) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
    await upstream.close();
    await redis.stop();
  }
});

for (const failOpen of [true, false]) {
  test(`Redis killed mid-run, failOpen ${failOpen}: ${failOpen ? '200' : '503'} for every later request, logged, no crash, no hung request`, async () => {
    const redis = await startRedis();
    const connection = await client(redis.port);
    const upstream = await startUpstream();
    const logger = memoryLogger();
    const served = await serveRelay(
      createRelay({
        targetBaseUrl: upstream.url,
        logger,
        stages: [rateLimit({ points: 1000, duration: 60_000, failOpen, store: redisStore({ client: connection, timeout: 2000 }) })],
      }),
    );
    try {
      const before = await Promise.all(Array.from({ length: 20 }, () => fetchRaw(served.url)));
      assert.ok(before.every((response) => response.status === 200 && response.headers.ratelimit !== undefined));
      const during = Array.from({ length: 20 }, () => fetchRaw(served.url));
      await redis.stop();
      const started = Date.now();
      const after = await Promise.all([...during, ...Array.from({ length: 30 }, () => fetchRaw(served.url))]);
      assert.ok(Date.now() - started < 10_000, 'no request waits for Redis past the store timeout');
      const expected = failOpen ? 200 : 503;
      const late = after.slice(20);
      assert.ok(late.every((response) => response.status === expected), `after the kill: ${late.map((r) => r.status)}`);
      assert.ok(after.slice(0, 20).every((response) => response.status === 200 || response.status === expected));
      if (!failOpen) assert.match(late[0]!.text, /^503 Service Unavailable: the rate limit cannot be checked/);
      const line = logger.lines.find((entry) => entry.message.startsWith('rate limit store failed'));
      assert.ok(line, 'the failure is logged');
      assert.is(line!.level, 'error');
      assert.is(line!.fields.store, 'redis');
      assert.is((await fetchRaw(served.url)).status, expected, 'the relay keeps serving');
    } finally {
      connection.disconnect();
      await served.close();
      await upstream.close();
      await redis.stop();
    }
  });
}

test('a Redis that stops answering (SIGSTOP, the connection still open): each call gives up at its timeout, then counts again', async () => {
  const redis = await startRedis();
  const connection = await client(redis.port);
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, logger, stages: [rateLimit({ points: 1000, duration: 60_000, store: redisStore({ client: connection, timeout: 300 }) })] }),
  );
  try {
    redis.process.kill('SIGSTOP');
    const started = Date.now();
    const frozen = await Promise.all(Array.from({ length: 10 }, () => fetchRaw(served.url)));
    assert.ok(Date.now() - started < 10_000, 'answered at the store timeout, not when Redis comes back');
    assert.ok(frozen.every((response) => response.status === 200 && response.headers.ratelimit === undefined), 'let through, uncounted');
    assert.ok(logger.lines.some((line) => String(line.fields.error).includes('did not answer within 300 ms')));
    redis.process.kill('SIGCONT');
    let counted = false;
    for (let i = 0; i < 50 && !counted; i++) counted = (await fetchRaw(served.url)).headers.ratelimit !== undefined;
    assert.ok(counted, 'counted again once Redis answers');
  } finally {
    redis.process.kill('SIGCONT');
    connection.disconnect();
    await served.close();
    await upstream.close();
    await redis.stop();
  }
});

test('a refund that comes after the bucket refilled does not give back the token of a request let through since (redis store)', async () => {
  const redis = await startRedis();
  const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, enableOfflineQueue: false });
  await client.connect();
  try {
    await refundAfterRefill(redisStore({ client, timeout: 2_000 }));
  } finally {
    client.disconnect();
    await redis.stop();
  }
});

test('redisStore options are checked', () => {
  assert.throws(() => redisStore({} as never), /redisStore: client must be an ioredis client/);
  assert.throws(() => redisStore({ client: new Redis({ lazyConnect: true }), timout: 5 } as never), /unknown option "timout" \(did you mean "timeout"\?/);
  assert.throws(() => redisStore({ client: new Redis({ lazyConnect: true }), timeout: 0 }), /redisStore: timeout must be a finite number > 0/);
});

test.run();
