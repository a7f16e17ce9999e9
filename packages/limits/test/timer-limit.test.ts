// redisStore's `timeout` arms a timer per call; node fires one longer than 2^31−1 ms (about 24.8 days)
// after 1 ms, so every call failed as if Redis were down. redisStore() refuses it, naming the option.
// (A limit's `duration` is no timer: buckets are compared against the clock, in memory or in Redis.)
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { delay, rangeErrorMessage } from '@relay/testkit';
import { createLimiter } from '../src/index.js';
import { redisStore } from '../src/redis-store.js';

const limit = 2 ** 31 - 1;
const thirtyDays = 30 * 24 * 3600 * 1000;

/** A "Redis" that accepts connections and never answers: only the store's timeout ends a call. */
async function silentRedis(): Promise<{ client: Redis; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  // No ready check nor CLIENT SETINFO: the client is ready once connected, with nothing answered.
  const client = new Redis({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, enableReadyCheck: false, disableClientInfo: true, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  await new Promise((resolve) => client.once('ready', resolve));
  return {
    client,
    close: async () => {
      client.disconnect();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

test('redisStore timeout past the timer limit is a RangeError naming it; at the limit, a call Redis leaves unanswered stays pending', async () => {
  const redis = await silentRedis();
  try {
    assert.is(
      rangeErrorMessage(() => redisStore({ client: redis.client, timeout: limit + 1 })),
      `redisStore: timeout must be at most ${limit} ms (about 24.8 days, node's timer limit), got ${limit + 1}`,
    );
    assert.match(rangeErrorMessage(() => redisStore({ client: redis.client, timeout: thirtyDays })), /^redisStore: timeout must be at most 2147483647 ms/);
    const limiter = createLimiter({ points: 1, duration: 1000, store: redisStore({ client: redis.client, timeout: limit }) });
    const outcome = limiter.consume('k').then(
      () => 'allowed',
      (error: Error) => error.message,
    );
    assert.is(await Promise.race([outcome, delay(150).then(() => 'pending')]), 'pending');
    // The same silence with a short timeout fails the call: the timer is what decides.
    const short = createLimiter({ points: 1, duration: 1000, store: redisStore({ client: redis.client, timeout: 20 }) });
    await short.consume('k').then(
      () => assert.unreachable('nothing answered'),
      (error: Error) => assert.is(error.message, 'redis did not answer within 20 ms'),
    );
  } finally {
    await redis.close();
  }
});

test.run();
