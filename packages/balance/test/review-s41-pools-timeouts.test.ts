import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerResponse } from 'node:http';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { delay, fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { balance } from '../src/index.js';
import { named } from './helpers.js';

test('a target that accepts and never answers is ejected when retry({ deadline }) cuts its attempts (Envoy counts a route timeout, nginx a proxy timeout)', async () => {
  const held: ServerResponse[] = [];
  const hang = await startUpstream((_req, res) => held.push(res));
  const ok = await named('ok');
  const pool = balance({ targets: [hang.url, ok.url], outlier: { consecutiveFailures: 2 } });
  // The relay's read timeout (30 s by default) is longer than the request deadline, as is usual for a client-facing deadline.
  const served = await serveRelay(createRelay({ targetBaseUrl: ok.url, stages: [retry({ maxRetries: 1, deadline: 300 }), pool] }));
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await fetchRaw(served.url)).status);
  const hung = pool.targets().find((target) => target.url === hang.url)!;
  await served.close();
  for (const res of held) res.destroy();
  await hang.close();
  await ok.close();
  assert.ok(hung.ejections >= 1, `the hanging target was never ejected (failures counted: ${hung.consecutiveFailures}); clients got ${statuses.join(', ')}`);
  assert.ok(statuses.filter((status) => status === 504).length <= 3, `once ejected, requests stop timing out on it: ${statuses.join(', ')}`);
});

test('a DNS target whose first lookup never settles: the first request is answered within the relay timeouts, not held forever', async () => {
  const ok = await named('ok');
  const pool = balance({ targets: [{ dns: `http://app.internal:${new URL(ok.url).port}` }], resolve: () => new Promise<readonly string[]>(() => {}) });
  const served = await serveRelay(createRelay({ targetBaseUrl: ok.url, timeout: { connect: 500, read: 500, pool: 500 }, stages: [pool] }));
  const answer = fetchRaw(served.url).then(
    (response) => response.status,
    () => -1,
  );
  const outcome = await Promise.race([answer, delay(5_000).then(() => 'no answer after 5 s')]);
  pool.stop();
  await served.close();
  await answer;
  await ok.close();
  assert.type(outcome, 'number', String(outcome));
  assert.ok((outcome as number) >= 500, `a 5xx (503/504), got ${String(outcome)}`);
});

test.run();
