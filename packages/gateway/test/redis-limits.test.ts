// `redis:` in the config file: the real bin, several instances against one real redis-server (with a
// password), counting one limit together; Redis killed mid-run follows each limit's failOpen; a Redis
// that is down at start does not stop the gateway; the password is in no log line; SIGTERM exits.
import { createServer, type Server } from 'node:net';
import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, startRedis, startUpstream, waitFor, type RedisServer, type Upstream } from '@relay/testkit';
import { configDir, runBin, startBin, type ServingBin } from './bin.js';

const password = 'pw-Xq7-s3cret';
const files = configDir();
let upstream: Upstream;
let redis: RedisServer;

test.before(async () => {
  upstream = await startUpstream((_req, res) => res.end('ok'));
  redis = await startRedis({ args: ['--requirepass', password] });
});

test.after(async () => {
  await redis.stop();
  await upstream.close();
  files.cleanup();
});

const redisUrl = (port: number) => `redis://:${password}@127.0.0.1:${port}`;

/** A config whose routes count in `${REDIS_URL}` (the password comes from the environment, as in production). */
function config(routes: string[], redisBlock = 'redis: { url: "${REDIS_URL}", prefix: "test:${PREFIX}:" }'): string {
  const text = ['listen: [{ host: 127.0.0.1, port: 0 }]', redisBlock, 'routes:', ...routes, ''].join('\n');
  return files.write(`gateway-${Math.random().toString(36).slice(2)}.yaml`, text);
}

/** GET on a fresh connection; a request that gets no answer within 10 s is a hung request (status 0). */
function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Every log line and stderr of a bin, as text: where a password must never appear. */
function everything(bin: ServingBin): string {
  return `${JSON.stringify(bin.logs)}\n${bin.stderr()}`;
}

test('two instances (one of them with --workers 2) count one limit together in Redis; SIGTERM exits 0 with the client open', async () => {
  const file = config(['  - name: api', `    upstream: ${upstream.url}`, '    rateLimit: { points: 40, duration: 600000, key: route }']);
  const env = { REDIS_URL: redisUrl(redis.port), PREFIX: 'shared' };
  const [single, workers] = await Promise.all([startBin(['serve', file], { env }), startBin(['serve', file, '--workers', '2'], { env, listeningCount: 2 })]);
  try {
    await single.waitForLog((line) => line.msg === 'redis connected');
    // 120 requests, alternating between the instances, 12 at a time: 40 tokens for all of them.
    const statuses: number[] = [];
    for (let round = 0; round < 10; round++) {
      const batch = Array.from({ length: 12 }, (_, index) => get(`${(index % 2 === 0 ? single : workers).url}/x`));
      statuses.push(...(await Promise.all(batch)));
    }
    assert.is(statuses.filter((status) => status === 200).length, 40, `statuses: ${statuses.join(',')}`);
    assert.is(statuses.filter((status) => status === 429).length, 80);
    // Each worker counted in Redis itself: the primary's IPC store would have given the second instance 40 more.
    const workerLines = workers.logs.filter((line) => line.msg === 'redis connected');
    assert.is(workerLines.length, 2, 'each worker connects to Redis');
    assert.is(workerLines[0]!.redis, `redis://127.0.0.1:${redis.port}`);
  } finally {
    const codes = await Promise.all([single.stop('SIGTERM'), workers.stop('SIGTERM')]);
    assert.equal(codes, [0, 0], 'SIGTERM: both instances drained, quit Redis and exited 0');
  }
  for (const bin of [single, workers]) assert.not.ok(everything(bin).includes(password), 'the password is in a log line');
});

test('Redis killed mid-run: failOpen true lets through, failOpen false answers 503, nothing hangs; back once Redis is', async () => {
  const own = await startRedis({ args: ['--requirepass', password] });
  const file = config([
    '  - name: open',
    '    match: { path: /open }',
    `    upstream: ${upstream.url}`,
    '    rateLimit: { points: 1000, duration: 1000, failOpen: true }',
    '  - name: closed',
    '    match: { path: /closed }',
    `    upstream: ${upstream.url}`,
    '    rateLimit: { points: 1000, duration: 1000, failOpen: false }',
    '  - name: local',
    '    match: { path: /local }',
    `    upstream: ${upstream.url}`,
    '    rateLimit: { points: 2, duration: 600000, store: memory, failOpen: false }',
  ]);
  const bin = await startBin(['serve', file], { env: { REDIS_URL: redisUrl(own.port), PREFIX: 'kill' } });
  try {
    await bin.waitForLog((line) => line.msg === 'redis connected');
    assert.equal(await Promise.all([get(`${bin.url}/open`), get(`${bin.url}/closed`)]), [200, 200]);
    await own.stop();
    await bin.waitForLog((line) => line.msg.startsWith('redis connection failed'));
    const started = Date.now();
    const during = await Promise.all(Array.from({ length: 20 }, (_, index) => get(`${bin.url}/${index % 2 === 0 ? 'open' : 'closed'}`)));
    assert.equal(
      during.filter((_, index) => index % 2 === 0),
      Array(10).fill(200),
      'failOpen: true let the requests through',
    );
    assert.equal(
      during.filter((_, index) => index % 2 === 1),
      Array(10).fill(503),
      'failOpen: false answered 503',
    );
    assert.ok(Date.now() - started < 8_000, `the requests took ${Date.now() - started} ms`);
    // `store: memory` opts out of Redis: its limit counts in the process, Redis or not.
    assert.equal([await get(`${bin.url}/local`), await get(`${bin.url}/local`), await get(`${bin.url}/local`)], [200, 200, 429]);
    const failures = bin.logs.filter((line) => line.msg.startsWith('redis connection failed'));
    assert.is(failures.length, 1, 'the outage is logged once, not once per reconnect attempt');
    assert.ok(bin.logs.some((line) => line.msg === 'rate limit store failed: 503 (failOpen: false)'));

    const back = await startRedis({ port: own.port, args: ['--requirepass', password] });
    try {
      await bin.waitForLog((line) => line.msg === 'redis connection back', 15_000);
      assert.is(await get(`${bin.url}/closed`), 200);
    } finally {
      await back.stop();
    }
    assert.is(bin.child.exitCode, null, 'the gateway is still running');
  } finally {
    assert.is(await bin.stop('SIGTERM'), 0);
  }
  assert.not.ok(everything(bin).includes(password), 'the password is in a log line');
});

test('a Redis that is down at start: the gateway serves (failOpen decides) and exits on SIGTERM', async () => {
  const port = await closedPort();
  const file = config(['  - name: api', `    upstream: ${upstream.url}`, '    rateLimit: { points: 5, duration: 1000 }']);
  const bin = await startBin(['serve', file], { env: { REDIS_URL: redisUrl(port), PREFIX: 'down' } });
  try {
    assert.ok(await waitFor(() => bin.logs.some((line) => line.msg.startsWith('redis not ready')), 5_000));
    assert.is(await get(`${bin.url}/x`), 200);
  } finally {
    assert.is(await bin.stop('SIGTERM'), 0);
  }
  assert.not.ok(everything(bin).includes(password), 'the password is in a log line');
});

test('relay check: a bad redis block is a config error at redis.url (without the password); a good one is checked without connecting', async () => {
  const bad = config(['  - name: api', `    upstream: ${upstream.url}`], `redis: { url: "http://:${password}@127.0.0.1:6379" }`);
  const refused = await runBin(['check', bad]);
  assert.is(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /:2: redis\.url: expected a redis:\/\/ or rediss:\/\/ URL such as redis:\/\/127\.0\.0\.1:6379, got "http:\/\/127\.0\.0\.1:6379"/);
  assert.not.ok(refused.stderr.includes(password));

  const orphan = config(['  - name: api', `    upstream: ${upstream.url}`, '    rateLimit: { points: 5, duration: 1000, store: redis }'], '');
  const noBlock = await runBin(['check', orphan]);
  assert.is(noBlock.code, 2);
  assert.match(noBlock.stderr, /:6: routes\[0\]\.rateLimit\.store: store: redis needs a top-level redis: \{ url \} block/);

  // A TCP server standing in for Redis: `relay check` must not connect to it.
  let connections = 0;
  const fake: Server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
  try {
    const port = (fake.address() as { port: number }).port;
    const good = config(['  - name: api', `    upstream: ${upstream.url}`, '    rateLimit: { points: 5, duration: 1000 }']);
    const checked = await runBin(['check', good], { env: { REDIS_URL: redisUrl(port), PREFIX: 'check' } });
    assert.is(checked.code, 0, checked.stderr);
    assert.is(connections, 0, 'relay check connected to Redis');
  } finally {
    await new Promise<void>((resolve) => fake.close(() => resolve()));
  }
});

test.run();
