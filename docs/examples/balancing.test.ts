import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, memoryLogger, serveRelay, startUpstream, type Upstream } from '@relay/testkit';
import { createServer } from 'node:http';
import { Registry } from 'prom-client';
import { apiPool, balanceDefaults, discoveredPool, guardedPool, observedPool, redeploy, stickyPool, stopAll } from './balancing.js';

function replicas(count: number): Promise<Upstream[]> {
  return Promise.all(
    Array.from({ length: count }, (_, index) =>
      startUpstream((req, res) => {
        res.setHeader('x-replica', String(index));
        res.end(req.url);
      }),
    ),
  );
}

async function replicaOf(url: string, headers: Record<string, string> = {}): Promise<string> {
  const answer = await fetchRaw(url, { headers });
  assert.is(answer.status, 200);
  return String(answer.headers['x-replica']);
}

test('apiPool: weights 1:1:2, the path kept, a dead replica costs no client request (retry + ejection), health checks run', async () => {
  const ups = await replicas(3);
  const { api, pool } = apiPool(ups.map((up) => up.url));
  const served = await serveRelay(api);
  const counts = [0, 0, 0];
  for (let i = 0; i < 40; i++) counts[Number(await replicaOf(`${served.url}/api/items`))]!++;
  assert.equal(counts, [10, 10, 20]);
  assert.is(ups[0]!.requests.find((r) => r.url !== '/health')!.url, '/items');
  assert.ok(ups.every((up) => up.requests.some((r) => r.url === '/health')), 'health checks started with the first request');
  await ups[1]!.close();
  for (let i = 0; i < 30; i++) assert.not.equal(await replicaOf(`${served.url}/api/items`), '1');
  assert.ok(pool.targets()[1]!.ejectedUntil > 0, 'ejected after 5 failures');
  await served.close();
  await stopAll(api, pool);
  await ups[0]!.close();
  await ups[2]!.close();
});

test('stickyPool: one session cookie, one replica', async () => {
  const ups = await replicas(3);
  const served = await serveRelay(stickyPool(ups.map((up) => up.url)));
  for (const session of ['a', 'b', 'c', 'd']) {
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) seen.add(await replicaOf(served.url, { cookie: `session=${session}` }));
    assert.is(seen.size, 1, session);
  }
  await served.close();
  await Promise.all(ups.map((up) => up.close()));
});

test('guardedPool: least-request with a circuit per replica', async () => {
  const ups = await replicas(2);
  const served = await serveRelay(guardedPool(ups.map((up) => up.url)));
  const seen = new Set(await Promise.all(Array.from({ length: 20 }, () => replicaOf(served.url))));
  assert.is(seen.size, 2);
  await served.close();
  await Promise.all(ups.map((up) => up.close()));
});

test('discoveredPool: localhost through the system resolver; state changes logged', async () => {
  const upstream = createServer((_req, res) => res.end());
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as { port: number }).port;
  const logger = memoryLogger();
  const { api, pool } = discoveredPool(`http://localhost:${port}`, logger);
  await pool.start();
  assert.ok(pool.targets().some((t) => t.url === `http://127.0.0.1:${port}`));
  assert.ok(logger.lines.some((line) => line.message === 'upstream pool changed' && line.fields.change === 'added'));
  await stopAll(api, pool);
  await close(upstream);
});

test('observedPool: the scrape has each target healthy, not ejected, and its attempts', async () => {
  const ups = await replicas(3);
  const { api, pool, scrape } = observedPool(ups.map((up) => up.url), new Registry());
  const served = await serveRelay(api);
  for (let i = 0; i < 9; i++) await replicaOf(`${served.url}/items`);
  const text = await scrape();
  for (const up of ups) {
    assert.ok(text.includes(`relay_upstream_target_healthy{relay="api",pool="api",target="${up.url}"} 1`));
    assert.ok(text.includes(`relay_upstream_target_ejected{relay="api",pool="api",target="${up.url}"} 0`));
    assert.ok(text.includes(`relay_upstream_circuit_open{relay="api",pool="api",target="${up.url}"} 0`));
    assert.ok(text.includes(`relay_upstream_attempts_total{relay="api",target="${up.url}",outcome="2xx"} 3`));
  }
  await served.close();
  await stopAll(api, pool);
  await Promise.all(ups.map((up) => up.close()));
});

test('redeploy: setTargets replaces the list', async () => {
  const ups = await replicas(2);
  const { api, pool } = apiPool([ups[0]!.url, ups[0]!.url.replace('127.0.0.1', 'localhost'), ups[1]!.url]);
  assert.equal(redeploy(pool, [ups[1]!.url]), [`${ups[1]!.url} healthy, 0 in flight`]);
  const served = await serveRelay(api);
  assert.is(await replicaOf(`${served.url}/api/x`), '1');
  await served.close();
  await stopAll(api, pool);
  await Promise.all(ups.map((up) => up.close()));
});

test('balanceDefaults: every option spelled as the reference gives it', () => {
  const pool = balanceDefaults();
  assert.equal(pool.targets().map((t) => [t.url, t.weight]), [['http://10.0.0.1:8000', 1], ['http://10.0.0.2:8000', 1]], 'DNS targets appear after their first lookup');
  pool.stop();
});

test.run();
