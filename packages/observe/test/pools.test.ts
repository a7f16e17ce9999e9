import type { ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { balance } from '@relay/balance';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { fetchRaw, serveRelay, startUpstream, type Upstream } from '@relay/testkit';
import { metrics } from '../src/index.js';

/** The value of one series in a scrape, `undefined` when it is absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The sum of the series whose line passes `pick`. */
function total(text: string, pick: (line: string) => boolean): number {
  return text
    .split('\n')
    .filter((line) => !line.startsWith('#') && pick(line))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** Scrapes until `check` holds (or `timeoutMs` passes) and returns the last scrape. */
async function scrapeUntil(registry: Registry, check: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = await registry.metrics();
  while (!check(text) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    text = await registry.metrics();
  }
  return text;
}

function named(name: string): Promise<Upstream> {
  return startUpstream((_req, res) => res.writeHead(200, { 'x-upstream': name, 'content-length': name.length }).end(name));
}

/** `count` GETs, `concurrency` at a time; resolves to their statuses. */
async function load(url: string, count: number, concurrency: number): Promise<number[]> {
  const statuses: number[] = [];
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      next++;
      statuses.push((await fetchRaw(url)).status);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}

const gauge = (name: string, target: string) => `relay_${name}{relay="api",pool="api",target="${target}"}`;

test('three real upstreams, one killed under traffic: its healthy series flips to 0 and its ejected series to 1', async () => {
  const ups = await Promise.all(['a', 'b', 'c'].map(named));
  const pool = balance({
    targets: ups.map((up) => up.url),
    // Health checks slower than the traffic: the outlier detection ejects the dead target first.
    healthCheck: { path: '/health', interval: 300, timeout: 1000, healthyThreshold: 1, unhealthyThreshold: 2 },
    outlier: { consecutiveFailures: 2, baseEjectionTime: 60_000 },
    circuit: { maxRequests: 100 },
  });
  const registry = new Registry();
  const m = metrics({ registry, relay: 'api', pools: { api: pool } });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [m.request, retry({ maxRetries: 2, backoffFactor: 1 }), pool, m.attempt] }));
  assert.ok((await load(served.url, 150, 5)).every((status) => status === 200));
  let text = await registry.metrics();
  for (const up of ups) {
    assert.is(value(text, gauge('upstream_target_healthy', up.url)), 1, `${up.url} healthy`);
    assert.is(value(text, gauge('upstream_target_ejected', up.url)), 0);
    assert.is(value(text, gauge('upstream_target_in_flight', up.url)), 0);
    assert.is(value(text, gauge('upstream_target_pending', up.url)), 0);
    assert.is(value(text, gauge('upstream_circuit_open', up.url)), 0);
    // The attempt and request counters carry the target the balancer chose, not the relay's default.
    assert.ok(value(text, `relay_upstream_attempts_total{relay="api",target="${up.url}",outcome="2xx"}`)! >= 40, `${up.url} served its share`);
    assert.ok(value(text, `relay_requests_total{relay="api",route="",method="GET",status_class="2xx",target="${up.url}"}`)! >= 40);
  }
  const dead = ups[2]!.url;
  await ups[2]!.close();
  assert.ok((await load(served.url, 150, 5)).every((status) => status === 200), 'retry() hides the dead target from clients');
  text = await scrapeUntil(registry, (scrape) => value(scrape, gauge('upstream_target_healthy', dead)) === 0);
  assert.is(value(text, gauge('upstream_target_healthy', dead)), 0, 'the killed target is unhealthy');
  assert.is(value(text, gauge('upstream_target_ejected', dead)), 1, 'and ejected by the outlier detection');
  assert.ok(value(text, `relay_upstream_attempts_total{relay="api",target="${dead}",outcome="ERR_UPSTREAM_UNREACHABLE"}`)! >= 2, 'its failed attempts are counted on it');
  // A retry can land on the dead target too while concurrent requests move the round robin, so
  // the invariant is: every failed attempt was retried, and the retries ended on the live targets.
  const failed = total(text, (line) => line.startsWith(`relay_upstream_attempts_total{relay="api",target="${dead}",`) && !line.includes('outcome="2xx"'));
  const retries = total(text, (line) => line.startsWith('relay_upstream_retries_total{relay="api",'));
  assert.ok(failed >= 2, 'two failures ejected it');
  assert.is(retries, failed, 'every failed attempt was retried');
  const live = (value(text, `relay_upstream_retries_total{relay="api",target="${ups[0]!.url}"}`) ?? 0) + (value(text, `relay_upstream_retries_total{relay="api",target="${ups[1]!.url}"}`) ?? 0);
  assert.ok(live >= 1, 'the retries went to the live targets');
  for (const up of ups.slice(0, 2)) {
    assert.is(value(text, gauge('upstream_target_healthy', up.url)), 1, `${up.url} stays healthy`);
    assert.is(value(text, gauge('upstream_target_ejected', up.url)), 0);
  }
  pool.stop();
  await served.close();
  await Promise.all(ups.slice(0, 2).map((up) => up.close()));
});

test('a full target: in-flight, pending and circuit-open gauges at scrape time, back to 0 when it drains', async () => {
  const held: ServerResponse[] = [];
  const slow = await startUpstream((_req, res) => held.push(res));
  const pool = balance({ targets: [slow.url], circuit: { maxRequests: 1, maxPending: 1 } });
  const registry = new Registry();
  const m = metrics({ registry, relay: 'api', pools: { api: pool } });
  const served = await serveRelay(createRelay({ targetBaseUrl: slow.url, stages: [m.request, pool, m.attempt] }));
  const pending = [fetchRaw(served.url), fetchRaw(served.url)];
  let text = await scrapeUntil(registry, (scrape) => value(scrape, gauge('upstream_target_pending', slow.url)) === 1);
  assert.is(value(text, gauge('upstream_target_in_flight', slow.url)), 1);
  assert.is(value(text, gauge('upstream_target_pending', slow.url)), 1);
  assert.is(value(text, gauge('upstream_circuit_open', slow.url)), 1);
  assert.is((await fetchRaw(served.url)).status, 503, 'past maxPending: refused');
  for (let answered = 0; answered < 2; answered++) {
    while (held.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    held.shift()!.end('done');
  }
  assert.equal((await Promise.all(pending)).map((response) => response.status), [200, 200]);
  text = await scrapeUntil(registry, (scrape) => value(scrape, gauge('upstream_target_in_flight', slow.url)) === 0);
  assert.is(value(text, gauge('upstream_target_in_flight', slow.url)), 0);
  assert.is(value(text, gauge('upstream_circuit_open', slow.url)), 0);
  await served.close();
  await slow.close();
});

test('targets that leave the pool leave the scrape; no pools, no per-target series', async () => {
  const ups = await Promise.all(['a', 'b'].map(named));
  const pool = balance({ targets: ups.map((up) => up.url) });
  const registry = new Registry();
  const m = metrics({ registry, relay: 'api', pools: { api: pool } });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [m.request, pool, m.attempt] }));
  assert.is((await fetchRaw(served.url)).status, 200);
  assert.is(value(await registry.metrics(), gauge('upstream_target_healthy', ups[1]!.url)), 1);
  pool.setTargets([ups[0]!.url]);
  const text = await registry.metrics();
  assert.is(value(text, gauge('upstream_target_healthy', ups[1]!.url)), undefined, 'a removed target has no series');
  assert.is(value(text, gauge('upstream_target_healthy', ups[0]!.url)), 1);

  const plain = new Registry();
  const p = metrics({ registry: plain, relay: 'api' });
  const served2 = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [p.request, p.attempt] }));
  assert.is((await fetchRaw(served2.url)).status, 200);
  assert.not.match(await plain.metrics(), 'upstream_target_healthy');
  await served.close();
  await served2.close();
  await Promise.all(ups.map((up) => up.close()));
});

test('pools is checked: an object of pools with targets()', () => {
  assert.throws(() => metrics({ registry: new Registry(), pools: [] as never }), /pools must be an object of named pools/);
  assert.throws(() => metrics({ registry: new Registry(), pools: { api: {} as never } }), /pools\.api must be a pool with a targets\(\) method/);
  assert.throws(() => metrics({ registry: new Registry(), pool: {} } as never), /pools/);
});

test.run();
