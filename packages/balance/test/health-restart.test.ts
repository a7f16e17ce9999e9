// stop() then start() (a reload stops a pool and may start it again) while a health check is in
// flight: stop() cancels that check, and a cancelled check is no verdict on the target. Each run has
// its own checks: the old run's result is ignored, and the new run checks the target at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, startUpstream, waitFor } from '@relay/testkit';
import { balance } from '../src/index.js';

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
  const checks = up.requests.length;
  pool.stop();
  await up.close();
  assert.equal(events.filter((change) => change === 'unhealthy'), [], 'no unhealthy verdict for a target that never failed a check');
  assert.ok(healthy);
  // With a minute between checks, only the restart's own first check can be the second one.
  assert.is(checks, 2, 'the restarted run checks the target at once, not after its interval: stop() leaves no member marked as being checked');
});

test('a check of the old run that its target would fail (503) is cancelled by stop() and counts for nothing; the new run\'s own check decides', async () => {
  // The first check is answered 503 after 300 ms (after the restart), every later one 200 at once.
  let seen = 0;
  const up = await startUpstream((req, res) => {
    if (req.url !== '/health') return void res.end('ok');
    seen++;
    if (seen > 1) return void res.end('ok');
    setTimeout(() => {
      res.statusCode = 503;
      res.end('down');
    }, 300);
  });
  const events: string[] = [];
  const pool = balance({
    targets: [up.url],
    healthCheck: { path: '/health', interval: 60_000, timeout: 5_000, unhealthyThreshold: 1, healthyThreshold: 1 },
    onStateChange: (event) => {
      if (event.change !== 'added') events.push(event.change);
    },
  });
  await pool.start();
  assert.ok(await waitFor(() => seen === 1, 5_000), 'the first check is in flight');
  pool.stop();
  await pool.start();
  assert.ok(await waitFor(() => seen === 2, 5_000), 'the new run checks at once');
  await delay(600);
  const healthy = pool.targets()[0]!.healthy;
  pool.stop();
  await up.close();
  assert.equal(events, [], 'the old run\'s check changed a verdict');
  assert.ok(healthy);
});

test.run();
