import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { balance } from '../src/index.js';
import { countBy, load, named } from './helpers.js';

test('circuit: past maxRequests and maxPending an attempt fails fast with 503 and Retry-After; the pending one is served later', async () => {
  const held: Array<() => void> = [];
  const up = await startUpstream((_req, res) => held.push(() => res.end('done')));
  const pool = balance({ targets: [up.url], circuit: { maxRequests: 2, maxPending: 1, retryAfter: 3 } });
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [pool], logger }));
  const first = [fetchRaw(served.url), fetchRaw(served.url)];
  assert.ok(await waitFor(() => held.length === 2, 5_000));
  const pending = fetchRaw(served.url);
  assert.ok(await waitFor(() => pool.targets()[0]!.pending === 1, 5_000));
  const started = Date.now();
  const refused = await fetchRaw(served.url);
  assert.is(refused.status, 503);
  assert.is(refused.headers['retry-after'], '3');
  assert.match(refused.text, /ERR_CIRCUIT_OPEN/);
  assert.not.match(refused.text, /127\.0\.0\.1/);
  assert.ok(Date.now() - started < 5000, 'fast, not queued (a queued attempt would wait for a slot that frees only below)');
  assert.equal(logger.lines.find((line) => line.message === 'balance: circuit open: 503')?.fields, { target: up.url, inFlight: 2, pending: 1 });
  assert.is(up.requests.length, 2, 'the upstream saw only the two in flight');
  held.shift()!();
  assert.ok(await waitFor(() => held.length === 2, 5_000), 'the pending attempt went upstream when a slot freed');
  while (held.length > 0) held.shift()!();
  assert.equal((await Promise.all([...first, pending])).map((r) => r.status), [200, 200, 200]);
  assert.ok(await waitFor(() => pool.targets()[0]!.inFlight === 0, 2_000), 'every slot released');
  await served.close();
  await up.close();
});

test('circuit: a full target is passed over for one with room', async () => {
  const slow = await named('slow', 300);
  const fast = await named('fast', 300);
  const pool = balance({ targets: [slow.url, fast.url], circuit: { maxRequests: 2 } });
  const served = await serveRelay(createRelay({ targetBaseUrl: slow.url, stages: [pool] }));
  const hits = await load(served.url, 4, 4);
  assert.equal(countBy(hits), { slow: 2, fast: 2 });
  const over = await load(served.url, 6, 6);
  assert.is(over.filter((hit) => hit.status === 503).length, 2, 'beyond 2 × 2 in flight: 503');
  assert.ok(over.filter((hit) => hit.status === 503).every((hit) => hit.retryAfter === '1'));
  await served.close();
  await slow.close();
  await fast.close();
});

test.run();
