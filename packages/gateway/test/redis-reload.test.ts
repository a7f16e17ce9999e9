// The gateway's own Redis client across reloads (createGateway + reload, real redis-servers): the same
// url keeps the client and the counts, another url gets a new client and the old one is quit once the
// old routes drained; shutdown quits the last one.
import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Redis } from 'ioredis';
import { close, delay, fetchRaw, listen, memoryLogger, startRedis, startUpstream, type RedisServer, type Upstream } from '@relay/testkit';
import { createGateway, loadConfig } from '../src/index.js';
import { configDir } from './bin.js';

const files = configDir();
let upstream: Upstream;
let first: RedisServer;
let second: RedisServer;

test.before(async () => {
  upstream = await startUpstream((_req, res) => res.end('ok'));
  [first, second] = await Promise.all([startRedis(), startRedis()]);
});

test.after(async () => {
  await Promise.all([first.stop(), second.stop()]);
  await upstream.close();
  files.cleanup();
});

async function config(redisPort: number, points: number) {
  const text = [
    'listen: [{ port: 0 }]',
    `redis: { url: "redis://127.0.0.1:${redisPort}" }`,
    'routes:',
    '  - name: api',
    `    upstream: ${upstream.url}`,
    `    rateLimit: { points: ${points}, duration: 600000, key: route }`,
    '',
  ].join('\n');
  return loadConfig(files.write(`gateway-${Math.random().toString(36).slice(2)}.yaml`, text));
}

/** An observer's view of a redis-server: its connected clients (less the observer) and keys. */
interface Observer {
  clients(): Promise<number>;
  keys(): Promise<string[]>;
  quit(): Promise<void>;
}

async function observe(server: RedisServer): Promise<Observer> {
  const client = new Redis({ host: '127.0.0.1', port: server.port, lazyConnect: true });
  client.on('error', () => {}); // reconnect attempts once the test's servers are stopped
  await client.connect();
  return {
    clients: async () => Number(/connected_clients:(\d+)/.exec(await client.info('clients'))![1]) - 1,
    keys: () => client.keys('*'),
    quit: async () => void (await client.quit()),
  };
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await delay(50);
  }
  return check();
}

test('a reload keeps the client for the same url (and the counts), replaces it for another, and quits the old one after the drain', async () => {
  const [a, b] = await Promise.all([observe(first), observe(second)]);
  try {
    await reloadAcross(a, b);
  } finally {
    await Promise.all([a.quit(), b.quit()]);
  }
});

async function reloadAcross(a: Observer, b: Observer): Promise<void> {
  const logger = memoryLogger();
  const gateway = createGateway(await config(first.port, 2), { logger });
  await gateway.startup();
  const server = createServer(gateway.handle);
  const base = await listen(server);
  const status = async () => (await fetchRaw(`${base}/x`)).status;
  try {
    assert.is(await a.clients(), 1, 'the gateway opened one connection');
    assert.equal([await status(), await status(), await status()], [200, 200, 429]);
    assert.equal(await a.keys(), ['relay:limits:api:default:route'], 'keys: prefix, route label, limit name, key (here the route: `key: route`)');
    const client = gateway.current.redis;

    // Same url, another limit: the client and the clients' counts in Redis stay.
    await gateway.reload(await config(first.port, 3));
    assert.ok(gateway.current.redis === client, 'the same url got a new client');
    assert.is(await status(), 429, 'the reload handed the client a fresh budget');
    assert.is(await a.clients(), 1);

    // Another Redis: a new client now, the old one quit once the old routes have drained.
    await gateway.reload(await config(second.port, 2));
    assert.ok(gateway.current.redis !== client);
    assert.is(await b.clients(), 1, 'the new Redis got its connection before the config served');
    assert.is(await status(), 200, 'the new Redis has its own buckets');
    assert.ok(await until(async () => (await a.clients()) === 0), 'the old client was not quit after the drain');
    assert.ok(logger.lines.some((line) => line.message === 'redis connected' && line.fields.redis === `redis://127.0.0.1:${second.port}`));
  } finally {
    await close(server);
    await gateway.shutdown(500);
  }
  assert.ok(await until(async () => (await b.clients()) === 0), 'shutdown left the client open');
}

test('a reload refused while building closes the client it made for a new url; the serving one stays', async () => {
  const b = await observe(second);
  const gateway = createGateway(await config(first.port, 2), { logger: memoryLogger() });
  await gateway.startup();
  try {
    const client = gateway.current.redis;
    const broken = files.write(
      'broken.yaml',
      ['listen: [{ port: 0 }]', `redis: { url: "redis://127.0.0.1:${second.port}" }`, 'routes:', '  - upstream: [http://127.0.0.1:1, http://127.0.0.1:2]', '    balance: { hashKey: { header: x-user } }', ''].join('\n'),
    );
    let refused = false;
    await gateway.reload(await loadConfig(broken)).catch(() => (refused = true));
    assert.ok(refused, 'the config was accepted');
    assert.ok(gateway.current.redis === client);
    await delay(200);
    assert.is(await b.clients(), 0, 'the refused config connected to its Redis');
  } finally {
    await gateway.shutdown(500);
    await b.quit();
  }
});

test('createGateway without startup(): the client never connects, and shutdown() still closes it', async () => {
  const a = await observe(first);
  const gateway = createGateway(await config(first.port, 2), { logger: memoryLogger() });
  try {
    await gateway.shutdown(0);
    assert.is(await a.clients(), 0);
  } finally {
    await a.quit();
  }
});

test.run();
