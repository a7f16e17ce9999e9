// Review s36 (issue 21, rate limits): the IETF fields and Retry-After with rates that do not divide evenly, the same
// numbers from the memory store and a real redis-server, and a Redis that was never reachable (fail open / closed,
// no hang, no unhandled rejection). Black-box: real upstream, real relay, real redis-server.
import { once } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { createRelay } from '@relay/core';
import { closedPort, fetchRaw, memoryLogger, serveRelay, startRedis, startUpstream } from '@relay/testkit';
import { memoryStore, rateLimit, type LimitStore } from '../src/index.js';
import { redisStore } from '../src/redis-store.js';

const unhandled: unknown[] = [];
process.on('unhandledRejection', (reason) => unhandled.push(reason));

/** Statuses and headers of `count` sequential requests through a relay limited by `points`/`duration`/`burst`. */
async function sequence(store: LimitStore, points: number, duration: number, burst: number, count: number) {
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ name: 'api', points, duration, burst, store })] }));
  try {
    const seen: string[] = [];
    for (let i = 0; i < count; i++) {
      const response = await fetchRaw(`${served.url}/r`);
      seen.push(`${response.status} ${String(response.headers.ratelimit)} ${String(response.headers['retry-after'])}`);
    }
    return { seen, upstreamSaw: upstream.requests.length };
  } finally {
    await served.close();
    await upstream.close();
  }
}

test('5 a minute with a burst of 2: two pass, then 429 with Retry-After 12 (the next token), RateLimit t = 24; Redis gives the same', async () => {
  // draft-ietf-httpapi-ratelimit-headers: r = remaining, t = seconds to reset; RFC 9110 §10.2.3 Retry-After delay-seconds.
  const memory = await sequence(memoryStore(), 5, 60_000, 2, 4);
  assert.equal(memory.seen, ['200 "api";r=1;t=12 undefined', '200 "api";r=0;t=24 undefined', '429 "api";r=0;t=24 12', '429 "api";r=0;t=24 12']);
  assert.is(memory.upstreamSaw, 2, 'a refused request never reaches the upstream');
  const redis = await startRedis();
  const client = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await once(client, 'ready');
  try {
    const shared = await sequence(redisStore({ client, timeout: 1000 }), 5, 60_000, 2, 4);
    assert.equal(shared.seen, memory.seen);
  } finally {
    client.disconnect();
    await redis.stop();
  }
});

for (const failOpen of [true, false]) {
  test(`a Redis that was never reachable, failOpen ${failOpen}: ${failOpen ? '200, uncounted' : '503 with Retry-After: 1'} at once, logged, no unhandled rejection`, async () => {
    // Issue 21: "a documented behaviour when Redis is unreachable (fail open or closed: an option, default open, logged)".
    const client = new Redis({ host: '127.0.0.1', port: await closedPort(), maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    client.on('error', () => {});
    const upstream = await startUpstream();
    const logger = memoryLogger();
    const served = await serveRelay(
      createRelay({ targetBaseUrl: upstream.url, logger, stages: [rateLimit({ points: 10, duration: 1000, failOpen, store: redisStore({ client }) })] }),
    );
    try {
      const started = Date.now();
      const responses = await Promise.all(Array.from({ length: 20 }, () => fetchRaw(`${served.url}/r`)));
      assert.ok(Date.now() - started < 5_000, 'nobody waits for a Redis that is not there');
      for (const response of responses) {
        assert.is(response.status, failOpen ? 200 : 503);
        if (!failOpen) {
          assert.is(response.headers['retry-after'], '1');
          assert.match(response.text, /ERR_LIMIT_STORE/);
        }
      }
      assert.is(upstream.requests.length, failOpen ? 20 : 0);
      const lines = logger.lines.filter((line) => line.message.startsWith('rate limit store failed'));
      assert.ok(lines.length >= 1 && lines.length <= 2, `logged, throttled: ${lines.length} lines`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(unhandled, []);
    } finally {
      client.disconnect();
      await served.close();
      await upstream.close();
    }
  });
}

test.run();
