// Review s40 (leaks): a reload still starting when the gateway shuts down.
import { createServer, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, listen, memoryLogger, startUpstream, waitFor } from '@relay/testkit';
import { createGateway, loadConfig } from '../src/index.js';
import { configDir } from './bin.js';

test('shutdown() while a reload waits for its new Redis: once both settle, no relay runs and no connection to that Redis is left', async () => {
  const files = configDir();
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  // A Redis that accepts and never answers (overloaded, or behind a black-holing firewall): the reload
  // waits for it up to redisReadyWait (2 s).
  const redisSockets = new Set<Socket>();
  const silentRedis = createServer((socket) => {
    redisSockets.add(socket);
    socket.resume();
    socket.on('error', () => {});
    socket.on('close', () => redisSockets.delete(socket));
  });
  const redisPort = Number(new URL(await listen(silentRedis)).port);
  const config = (redis: string | null) =>
    loadConfig(
      files.write(
        `gateway-${Math.random().toString(36).slice(2)}.yaml`,
        ['listen: [{ port: 0 }]', ...(redis === null ? [] : [`redis: { url: "${redis}" }`]), 'routes:', '  - name: api', `    upstream: ${upstream.url}`, '    rateLimit: { points: 5, duration: 1000, key: route }', ''].join('\n'),
      ),
    );
  const gateway = createGateway(await config(null), { logger: memoryLogger() });
  await gateway.startup();
  // A config change (the file watcher, SIGHUP) lands just before SIGTERM.
  const reloading = gateway.reload(await config(`redis://127.0.0.1:${redisPort}`)).then(
    () => 'applied',
    () => 'refused',
  );
  assert.ok(await waitFor(() => redisSockets.size === 1), 'the reload is connecting to its Redis');
  await gateway.shutdown(100);
  await reloading;
  await delay(200);
  const running = gateway.current.routes.filter((route) => route.relay.state !== 'stopped').length;
  const redisConnections = redisSockets.size;
  // Clean up whatever the reload left, so this file exits.
  await gateway.current.shutdown(0);
  await gateway.current.redis?.close();
  for (const socket of redisSockets) socket.destroy();
  await new Promise<void>((resolve) => silentRedis.close(() => resolve()));
  await upstream.close();
  files.cleanup();
  assert.is(running, 0, 'every relay of the gateway is stopped after shutdown() (the reload started new ones)');
  assert.is(redisConnections, 0, 'the Redis connection the reload opened is closed (it keeps reconnecting and holds the process)');
});

test.run();
