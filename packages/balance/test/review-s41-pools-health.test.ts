import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { delay, fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { balance } from '../src/index.js';
import { named } from './helpers.js';

test('healthCheck.path that node cannot send (a space) is refused when balance() is called, not by answering every request 500', async () => {
  let built: ReturnType<typeof balance> | null = null;
  let message = '';
  try {
    built = balance({ targets: ['http://127.0.0.1:1'], healthCheck: { path: '/he alth' } });
  } catch (error) {
    message = (error as Error).message;
  }
  if (built === null) {
    assert.match(message, /healthCheck\.path/, 'the error names the option');
    return;
  }
  // Built: see what a production user then gets.
  const up = await named('up');
  const pool = balance({ targets: [up.url], healthCheck: { path: '/he alth' } });
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [pool] }));
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetchRaw(served.url)).status);
  pool.stop();
  await served.close();
  await up.close();
  assert.unreachable(`balance() accepted healthCheck.path '/he alth'; the healthy upstream's requests then got ${statuses.join(', ')}`);
});

test('healthCheck.statuses: [] is refused (or means the default): it must not make every check fail and take a serving target out', async () => {
  let message = '';
  let pool: ReturnType<typeof balance> | null = null;
  const up = await startUpstream((_req, res) => res.end('ok'));
  try {
    pool = balance({ targets: [up.url], healthCheck: { path: '/health', statuses: [], interval: 50, unhealthyThreshold: 1 } });
  } catch (error) {
    message = (error as Error).message;
  }
  if (pool === null) {
    await up.close();
    assert.match(message, /healthCheck\.statuses/);
    return;
  }
  await pool.start();
  assert.ok(await waitFor(() => up.requests.length >= 3, 5_000), 'checks ran');
  const healthy = pool.targets()[0]!.healthy;
  pool.stop();
  await up.close();
  assert.ok(healthy, 'a target answering 200 to its checks was marked unhealthy because no status can pass');
});

test('stop() then start() while a check is in flight: the cancelled check is not counted as a failure of a serving target', async () => {
  // A serving target whose health endpoint answers 200 after 300 ms.
  const up = await startUpstream((req, res) => {
    if (req.url === '/health') setTimeout(() => res.end('ok'), 300);
    else res.end('ok');
  });
  const events: string[] = [];
  const pool = balance({
    targets: [up.url],
    healthCheck: { path: '/health', interval: 60_000, timeout: 5_000, unhealthyThreshold: 1 },
    onStateChange: (event) => events.push(event.change),
  });
  await pool.start();
  assert.ok(await waitFor(() => up.requests.length === 1, 5_000), 'the first check is in flight');
  pool.stop(); // e.g. a reload stops the pool and starts it again
  await pool.start();
  await delay(1_000);
  const healthy = pool.targets()[0]!.healthy;
  pool.stop();
  await up.close();
  assert.equal(events.filter((change) => change === 'unhealthy'), [], 'no unhealthy verdict for a target that never failed a check');
  assert.ok(healthy);
});

test.run();
