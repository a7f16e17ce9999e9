// A Redis that stops answering (SIGSTOP: the connection stays open, nothing is answered). The relay
// answers 503 ERR_LIMIT_STORE at the store's timeout (failOpen: false), createLimiter's consume()
// rejects; the scripts those calls sent stay queued on the connection and run when Redis answers
// again, and the token each takes then is given back, so a failed call drains no bucket. The store
// bounds how many calls may wait on a frozen Redis (maxPending). Real redis-server, real sockets.
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { createRelay } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startRedis, startUpstream, waitFor } from '@relay/testkit';
import { createLimiter, rateLimit } from '../src/index.js';
import { redisStore } from '../src/redis-store.js';

async function connect(port: number): Promise<Redis> {
  const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await once(client, 'ready');
  return client;
}

/**
 * Resolves once Redis answers again, has run what was queued while it was frozen, and has answered
 * the refunds those late answers sent. Commands on one connection run in order: once the first ping
 * answers, the late scripts have run; the refund of a late take is a second command, sent as its
 * answer arrives, in the same turn of the event loop; a ping sent after that turn answers after them.
 */
async function answeredAgain(client: Redis): Promise<void> {
  await client.ping();
  await new Promise((resolve) => setImmediate(resolve));
  await client.ping();
}

test('failOpen: false and a frozen Redis: the requests answered 503 (never let through) are not charged once Redis answers again', async () => {
  // README: failOpen false "answers 503"; a request refused by a limit's 503 "is charged by none of them".
  const redis = await startRedis();
  const client = await connect(redis.port);
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
    await answeredAgain(client);
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
  const client = await connect(redis.port);
  const logins = createLimiter({ name: 'login', points: 2, duration: 60_000, store: redisStore({ client, timeout: 200 }) });
  try {
    redis.process.kill('SIGSTOP');
    const failed = await Promise.allSettled([logins.consume('user:ann'), logins.consume('user:ann')]);
    assert.equal(failed.map((result) => result.status), ['rejected', 'rejected']);
    redis.process.kill('SIGCONT');
    await answeredAgain(client);
    const decision = await logins.consume('user:ann');
    assert.is(decision.allowed, true, 'the two failed calls took no token');
    assert.is(decision.remaining, 1);
  } finally {
    redis.process.kill('SIGCONT');
    client.disconnect();
    await redis.stop();
  }
});

test('maxPending: calls past their timeout still count while a frozen Redis holds them; past the bound a call fails at once, and none of them is charged', async () => {
  const redis = await startRedis();
  const client = await connect(redis.port);
  const limiter = createLimiter({ name: 'bounded', points: 3, duration: 60_000, store: redisStore({ client, timeout: 1000, maxPending: 2 }) });
  try {
    redis.process.kill('SIGSTOP');
    const timedOut = await Promise.allSettled([limiter.consume('k'), limiter.consume('k')]);
    assert.equal(timedOut.map((result) => result.status), ['rejected', 'rejected']);
    const started = performance.now();
    const error = await limiter.consume('k').then(
      () => null,
      (reason: unknown) => reason as Error,
    );
    const waited = performance.now() - started;
    assert.match(error?.message ?? '', /redis has 2 calls waiting for an answer \(maxPending 2\)/);
    assert.ok(waited < 500, `refused at once, not at its 1000 ms timeout: ${waited} ms`);
    redis.process.kill('SIGCONT');
    await answeredAgain(client);
    const decision = await limiter.consume('k');
    assert.equal([decision.allowed, decision.remaining], [true, 2], 'the calls that timed out were given back, the refused one never sent');
  } finally {
    redis.process.kill('SIGCONT');
    client.disconnect();
    await redis.stop();
  }
});

test('a timed-out take whose late token cannot be given back is logged at error (the store\'s logger), and the token stays spent', async () => {
  const redis = await startRedis();
  const client = await connect(redis.port);
  const logger = memoryLogger();
  const limiter = createLimiter({ name: 'logged', points: 2, duration: 60_000, store: redisStore({ client, timeout: 200, logger }) });
  try {
    // The first take loads the script on this connection (ioredis sends EVAL once, then EVALSHA);
    // then EVAL is denied, so takes still run and the refund (a plain EVAL) fails in Redis.
    assert.is((await limiter.consume('k')).remaining, 1);
    await client.call('ACL', 'SETUSER', 'default', '-eval');
    redis.process.kill('SIGSTOP');
    await limiter.consume('k').then(
      () => assert.unreachable('Redis is frozen'),
      () => {},
    );
    redis.process.kill('SIGCONT');
    await answeredAgain(client);
    assert.ok(await waitFor(() => logger.lines.length > 0), 'the failed refund is logged');
    const [line] = logger.lines;
    assert.is(line!.level, 'error');
    assert.is(line!.message, 'rate limit store failed: the token of a call that timed out is not given back');
    assert.is(line!.fields.limit, 'logged');
    assert.is(line!.fields.store, 'redis');
    assert.match(String(line!.fields.error), /NOPERM/);
    assert.is((await limiter.consume('k')).allowed, false, 'the late take\'s token stays spent');
  } finally {
    redis.process.kill('SIGCONT');
    client.disconnect();
    await redis.stop();
  }
});

test('redisStore checks maxPending and logger when it is called', () => {
  const client = new Redis({ lazyConnect: true });
  assert.throws(() => redisStore({ client, maxPending: 0 }), /redisStore: maxPending must be a finite number > 0, got 0/);
  assert.throws(() => redisStore({ client, maxPending: 1.5 }), /redisStore: maxPending must be a whole number, got 1.5/);
  assert.throws(() => redisStore({ client, maxPending: '10' as never }), /redisStore: maxPending must be a number/);
  assert.throws(() => redisStore({ client, logger: console.log as never }), /redisStore: logger must have a debug\(fields, message\) method/);
  assert.throws(() => redisStore({ client, maxPendng: 5 } as never), /unknown option "maxPendng" \(did you mean "maxPending"\?/);
});

test.run();
