// Review s41 of @relay/limits (issue 21): a Redis that stops answering (SIGSTOP, the connection still
// open) with failOpen: false. The relay answers 503 ERR_LIMIT_STORE at the store's timeout, and those
// requests never reach the upstream; but the scripts they sent stay queued on the connection and run
// when Redis answers again, so requests that were refused drain the bucket of the clients that come
// next. Real redis-server, real sockets.
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startRedis, startUpstream } from '@relay/testkit';
import { createLimiter, rateLimit } from '../src/index.js';
import { redisStore } from '../src/redis-store.js';

test('failOpen: false and a frozen Redis: the requests answered 503 (never let through) are not charged once Redis answers again', async () => {
  // README: failOpen false "answers 503"; a request refused by a limit's 503 "is charged by none of them".
  const redis = await startRedis();
  const client = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await once(client, 'ready');
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [rateLimit({ name: 'paid', points: 3, duration: 60_000, key: 'route', failOpen: false, store: redisStore({ client, timeout: 200 }) })],
    }),
  );
  try {
    redis.process.kill('SIGSTOP');
    const frozen = await Promise.all(Array.from({ length: 3 }, () => fetchRaw(served.url)));
    assert.equal(frozen.map((response) => response.status), [503, 503, 503]);
    assert.is(upstream.requests.length, 0, 'none of them was let through');
    redis.process.kill('SIGCONT');
    // Commands on one connection run in order: once this answers, whatever was queued before it has run.
    await client.ping();
    const after: number[] = [];
    for (let i = 0; i < 3; i++) after.push((await fetchRaw(served.url)).status);
    assert.equal(after, [200, 200, 200], 'the bucket still holds its 3 tokens: nothing was let through while Redis was frozen');
  } finally {
    redis.process.kill('SIGCONT');
    client.disconnect();
    await served.close();
    await upstream.close();
    await redis.stop();
  }
});

test('createLimiter over redisStore: a consume() that rejected at its timeout takes no token once Redis answers again', async () => {
  // README: consume "rejects when the store fails"; a caller told "failed" does not go on, so nothing may be spent.
  const redis = await startRedis();
  const client = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await once(client, 'ready');
  const logins = createLimiter({ name: 'login', points: 2, duration: 60_000, store: redisStore({ client, timeout: 200 }) });
  try {
    redis.process.kill('SIGSTOP');
    const failed = await Promise.allSettled([logins.consume('user:ann'), logins.consume('user:ann')]);
    assert.equal(failed.map((result) => result.status), ['rejected', 'rejected']);
    redis.process.kill('SIGCONT');
    await client.ping();
    const decision = await logins.consume('user:ann');
    assert.is(decision.allowed, true, 'the two failed calls took no token');
    assert.is(decision.remaining, 1);
  } finally {
    redis.process.kill('SIGCONT');
    client.disconnect();
    await redis.stop();
  }
});

test.run();
