// Review s39 (gateway `redis:` block): the password of a Redis URL must never reach a log line or a
// config error. ioredis also takes the password from the URL's query (`?password=…`, any option
// is read from the query string): neither form is shown (found by review s39).
import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, memoryLogger, startRedis, startUpstream, type RedisServer, type Upstream } from '@relay/testkit';
import { createGateway, loadConfig } from '../src/index.js';
import { configDir, runBin } from './bin.js';

const files = configDir();
const password = 'qu3ry-s3cret';
let redis: RedisServer;
let upstream: Upstream;

test.before(async () => {
  [redis, upstream] = await Promise.all([startRedis({ args: ['--requirepass', password] }), startUpstream((_req, res) => res.end('ok'))]);
});

test.after(async () => {
  await Promise.all([redis.stop(), upstream.close()]);
  files.cleanup();
});

function config(url: string): string {
  const lines = ['listen: [{ port: 0 }]', `redis: { url: "${url}" }`, 'routes:', '  - name: api', `    upstream: ${upstream.url}`, '    rateLimit: { points: 5, duration: 60000, key: route }', ''];
  return files.write(`redis-${Math.random().toString(36).slice(2)}.yaml`, lines.join('\n'));
}

test('a password given as ?password= (which ioredis connects with) is not in the gateway\'s log lines', async () => {
  const logger = memoryLogger();
  const gateway = createGateway(await loadConfig(config(`redis://127.0.0.1:${redis.port}/0?password=${password}`)), { logger });
  await gateway.startup();
  const server = createServer(gateway.handle);
  const base = await listen(server);
  try {
    // ioredis authenticated with it: the limit counts in Redis.
    for (let i = 0; i < 6; i++) await fetchRaw(`${base}/x`);
    assert.is((await fetchRaw(`${base}/x`)).status, 429);
  } finally {
    await close(server);
    await gateway.shutdown(1_000);
  }
  const logged = JSON.stringify(logger.lines);
  assert.ok(logged.includes('redis connected'), logged);
  assert.not.ok(logged.includes(password), `the Redis password is logged: ${logged}`);
});

test('relay check: a redis.url refused for another reason does not echo its ?password=', async () => {
  const refused = await runBin(['check', config(`redis://127.0.0.1:notaport/0?password=${password}`)]);
  assert.is(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /redis\.url: expected a redis:\/\/ or rediss:\/\/ URL/);
  assert.not.ok(refused.stderr.includes(password), `the Redis password is in the error: ${refused.stderr}`);
});

test.run();
