// Review s39b: a refund gives back the token its own request took, never one another request took later. A token
// whose time has already passed (the bucket refilled it, or the store forgot the key) is no longer owed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { Redis } from 'ioredis';
import { delay, fetchRaw, serveRelay, startRedis, startUpstream } from '@relay/testkit';
import { memoryStore, rateLimit, type LimitStore } from '../src/index.js';
import { redisStore } from '../src/redis-store.js';

/** A stage that holds a request carrying `x-slow: <ms>` that long before the stages after it (an auth call, a Redis-backed limit). */
const slow: Stage = {
  name: 'slow',
  wrap: (next) => async (request) => {
    const wait = Number(request.headers['x-slow'] ?? 0);
    if (wait > 0) await delay(wait);
    return next(request);
  },
};

const headers = (client: string, inner: string, slowMs = 0) => ({
  headers: { 'x-client': client, 'x-inner': inner, ...(slowMs > 0 ? { 'x-slow': String(slowMs) } : {}) },
});

/** A's token refilled while A was held, B took the refilled token, then A's refusal gives a token back: C must still be refused. */
async function refundAfterRefill(store: LimitStore | undefined): Promise<void> {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        // One request per 2 s per client, no burst beyond one.
        rateLimit({ name: 'per-client', key: { header: 'x-client' }, points: 1, duration: 2_000, ...(store === undefined ? {} : { store }) }),
        slow,
        rateLimit({ name: 'inner', key: { header: 'x-inner' }, points: 1, duration: 600_000 }),
      ],
    }),
  );
  try {
    assert.is((await fetchRaw(served.url, headers('other', 'blocked'))).status, 200, 'inner key "blocked" spends its one token');
    // A: let through by per-client at t0, held 2.6 s, then refused by the inner limit.
    const a = fetchRaw(served.url, headers('c', 'blocked', 2_600));
    await delay(2_200);
    // B at t0 + 2.2 s: per-client has refilled since A (2 s); B takes that token and is let through.
    const b = await fetchRaw(served.url, headers('c', 'b-1'));
    assert.is(b.status, 200);
    assert.is((await a).status, 429, 'A refused by the inner limit: its per-client token is given back');
    // C right after A's refusal (t0 + 2.6 s, 0.4 s after B): per-client allows 1 per 2 s, B holds it.
    const c = await fetchRaw(served.url, headers('c', 'c-1'));
    assert.is(c.status, 429, 'A\'s token had been refilled already: refunding it again gave back B\'s token (2 requests in 0.4 s under 1 per 2 s)');
  } finally {
    await served.close();
    await upstream.close();
  }
}

test('a refund that comes after the bucket refilled does not give back the token of a request let through since (memory store)', async () => {
  await refundAfterRefill(undefined);
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

test('a refund for a key the memory store evicted (maxKeys) does not give back the token of the request that took the key since', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        rateLimit({ name: 'per-client', key: { header: 'x-client' }, points: 1, duration: 600_000, store: memoryStore({ maxKeys: 2 }) }),
        slow,
        rateLimit({ name: 'inner', key: { header: 'x-inner' }, points: 1, duration: 600_000 }),
      ],
    }),
  );
  try {
    assert.is((await fetchRaw(served.url, headers('x', 'blocked'))).status, 200, 'inner key "blocked" spends its one token');
    // A: client k, let through by per-client, held 400 ms, then refused by the inner limit.
    const a = fetchRaw(served.url, headers('k', 'blocked', 400));
    await delay(100);
    // Two other clients fill the store: k (the oldest) is evicted.
    assert.is((await fetchRaw(served.url, headers('j', 'j-1'))).status, 200);
    assert.is((await fetchRaw(served.url, headers('m', 'm-1'))).status, 200);
    // B: client k again, a fresh bucket: let through, its one token taken.
    assert.is((await fetchRaw(served.url, headers('k', 'b-1'))).status, 200);
    assert.is((await a).status, 429);
    const c = await fetchRaw(served.url, headers('k', 'c-1'));
    assert.is(c.status, 429, 'A\'s refund must not give back B\'s token: k has 1 per 10 minutes and B took it');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
