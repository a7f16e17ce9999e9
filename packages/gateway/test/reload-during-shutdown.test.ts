// A reload and a shutdown that overlap (a config change, from the file watcher or SIGHUP, lands just
// before SIGTERM). A reload waits for its new Redis up to redisReadyWait (2 s), here against a Redis
// that accepts and never answers (overloaded, or behind a black-holing firewall). Before, shutdown()
// resolved while the reload waited; the reload then made its generation current, with relays running
// and an ioredis client reconnecting forever, so the process could not exit.
import { createServer, type Server, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, listen, memoryLogger, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { createGateway, GatewayStoppingError, loadConfig, serve, type Gateway } from '../src/index.js';
import { configDir } from './bin.js';

const files = configDir();
let upstream: Upstream;
let silentRedis: Server;
let redisUrl: string;
const redisSockets = new Set<Socket>();

test.before(async () => {
  upstream = await startUpstream((_req, res) => res.end('ok'));
  silentRedis = createServer((socket) => {
    redisSockets.add(socket);
    socket.resume();
    socket.on('error', () => {});
    socket.on('close', () => redisSockets.delete(socket));
  });
  redisUrl = `redis://127.0.0.1:${new URL(await listen(silentRedis)).port}`;
});

test.after(async () => {
  for (const socket of redisSockets) socket.destroy();
  await new Promise<void>((resolve) => silentRedis.close(() => resolve()));
  await upstream.close();
  files.cleanup();
});

function configText(redis: string | null): string {
  const redisBlock = redis === null ? [] : [`redis: { url: "${redis}" }`];
  return ['listen: [{ host: 127.0.0.1, port: 0 }]', ...redisBlock, 'routes:', '  - name: api', `    upstream: ${upstream.url}`, '    rateLimit: { points: 5, duration: 1000, key: route }', ''].join('\n');
}

function config(redis: string | null) {
  return loadConfig(files.write(`gateway-${Math.random().toString(36).slice(2)}.yaml`, configText(redis)));
}

/** What a reload came to, without an unhandled rejection while the test waits. */
function outcome(reloading: Promise<void>): Promise<'applied' | Error> {
  return reloading.then(() => 'applied' as const, (error: Error) => error);
}

/** Relays of the gateway's current generation that still run. */
function running(gateway: Gateway): number {
  return gateway.current.routes.filter((route) => route.relay.state !== 'stopped').length;
}

/** Closes whatever a failed assertion left, so the file still exits. */
async function cleanUp(gateway: Gateway): Promise<void> {
  await gateway.current.shutdown(0);
  await gateway.current.redis?.close();
  for (const socket of redisSockets) socket.destroy();
}

test('shutdown() while a reload waits for its new Redis: the reload is abandoned, no relay runs and no connection to that Redis is left', async () => {
  const gateway = createGateway(await config(null), { logger: memoryLogger() });
  await gateway.startup();
  try {
    const reloading = outcome(gateway.reload(await config(redisUrl)));
    assert.ok(await waitFor(() => redisSockets.size === 1), 'the reload is connecting to its Redis');
    const started = Date.now();
    await gateway.shutdown(100);
    const took = Date.now() - started;
    const result = await reloading;
    await delay(200);
    assert.ok(took < 1500, `shutdown(100) waits for the reload no longer than its timeout, not the 2 s Redis wait (${took} ms)`);
    assert.instance(result, GatewayStoppingError, String(result));
    assert.match((result as Error).message, /abandoned: the gateway is stopping/);
    assert.is(gateway.current.number, 1, 'the new generation never became current');
    assert.equal(gateway.reloads, { succeeded: 0, failed: 0 });
    assert.is(running(gateway), 0, 'every relay of the gateway is stopped');
    assert.is(redisSockets.size, 0, 'the Redis connection the reload opened is closed (it would reconnect forever and hold the process)');
  } finally {
    await cleanUp(gateway);
  }
});

test('shutdown() with time to spare waits for the reload in progress: when it resolves, the reload has settled and closed what it started', async () => {
  const gateway = createGateway(await config(null), { logger: memoryLogger() });
  await gateway.startup();
  try {
    let settled = false;
    const reloading = outcome(gateway.reload(await config(redisUrl)).finally(() => (settled = true)));
    assert.ok(await waitFor(() => redisSockets.size === 1), 'the reload is connecting to its Redis');
    await gateway.shutdown(10_000);
    assert.ok(settled, 'the reload settled before shutdown() resolved');
    // The server sees the client's close a moment after the client has closed.
    assert.ok(await waitFor(() => redisSockets.size === 0, 1000), 'the Redis connection the reload opened is closed');
    assert.is(running(gateway), 0);
    assert.instance(await reloading, GatewayStoppingError);
  } finally {
    await cleanUp(gateway);
  }
});

test('a reload begun after shutdown() is refused at once: nothing is built, nothing connects', async () => {
  const gateway = createGateway(await config(null), { logger: memoryLogger() });
  await gateway.startup();
  try {
    const stopping = gateway.shutdown(100);
    const result = await outcome(gateway.reload(await config(redisUrl)));
    await stopping;
    assert.instance(result, GatewayStoppingError, String(result));
    assert.match((result as Error).message, /refused: the gateway is stopping/);
    assert.is(gateway.current.number, 1);
    await delay(100);
    assert.is(redisSockets.size, 0, 'no client was made for the refused config');
  } finally {
    await cleanUp(gateway);
  }
});

test('serve(): a reload cut short by stop() logs that it was abandoned because the gateway is stopping, not a refused config', async () => {
  const path = files.write('serve.yaml', configText(null));
  const logger = memoryLogger();
  const served = await serve({ config: path, logger, watch: false });
  try {
    files.write('serve.yaml', configText(redisUrl));
    const reloading = served.reload();
    assert.ok(await waitFor(() => redisSockets.size === 1), 'the reload is connecting to its Redis');
    await served.stop();
    assert.is(await reloading, false, 'the reload was not applied');
    const abandoned = logger.lines.find((line) => line.message === 'config reload abandoned: the gateway is stopping');
    assert.ok(abandoned !== undefined, JSON.stringify(logger.lines.map((line) => line.message)));
    assert.is(abandoned!.level, 'info');
    assert.not.ok(logger.lines.some((line) => line.message.startsWith('config reload refused')), 'not logged as a config error');
    assert.is(served.gateway.reloads.failed, 0, 'not counted as a failed reload');
    assert.ok(await waitFor(() => redisSockets.size === 0, 1000), 'the Redis connection the reload opened is closed');
    assert.is(running(served.gateway), 0);
  } finally {
    await cleanUp(served.gateway);
  }
});

test.run();
