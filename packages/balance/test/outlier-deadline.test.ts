// Outlier detection and retry({ deadline }): an attempt the request's deadline cuts while it waits
// on its target is that target's timeout (Envoy counts a route timeout against the host, nginx counts
// proxy_read_timeout in max_fails), so a target that accepts and never answers is ejected even when
// the deadline is shorter than the relay's read timeout. A deadline that cuts a wait in the circuit
// queue, or an attempt before it was sent (held in a stage before or after balance() past the
// deadline), says nothing about the target, and a pool whose `errors` name no timeout counts none.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerResponse } from 'node:http';
import { createRelay, type ProxyRequest, type Stage } from '@relay/core';
import { retry } from '@relay/retry';
import { delay, fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { balance } from '../src/index.js';
import { named } from './helpers.js';

/** A stage (between retry() and balance(), or after balance()) that holds each attempt `ms` (a per-attempt token fetch). */
function holdEachAttempt(ms: number): Stage {
  return {
    name: 'hold-each-attempt',
    wrap: (next) =>
      async function holdEachAttemptStage(request: ProxyRequest) {
        await delay(ms);
        return next(request);
      },
  };
}


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

test('outlier.errors without ERR_READ_TIMEOUT: an attempt cut by the deadline is not counted either', async () => {
  const held: ServerResponse[] = [];
  const hang = await startUpstream((_req, res) => held.push(res));
  const pool = balance({ targets: [hang.url], outlier: { consecutiveFailures: 1, errors: ['ERR_UPSTREAM_UNREACHABLE'] } });
  const served = await serveRelay(createRelay({ targetBaseUrl: hang.url, stages: [retry({ maxRetries: 0, deadline: 200 }), pool] }));
  const status = (await fetchRaw(served.url)).status;
  const state = pool.targets()[0]!;
  await served.close();
  for (const res of held) res.destroy();
  await hang.close();
  assert.is(status, 504);
  assert.is(state.ejections, 0, 'ejected for a timeout its errors do not name');
  assert.is(state.consecutiveFailures, 0);
});

test('a deadline that cuts a wait for a circuit slot is not a failure of the target (the attempt never reached it)', async () => {
  const held: ServerResponse[] = [];
  const slow = await startUpstream((_req, res) => held.push(res));
  const pool = balance({ targets: [slow.url], circuit: { maxRequests: 1, maxPending: 1 }, outlier: { consecutiveFailures: 1 } });
  // One pool behind two relays: the first holds the target's only slot (no deadline), the second's request waits for it.
  const holder = await serveRelay(createRelay({ targetBaseUrl: slow.url, stages: [pool] }));
  const waiter = await serveRelay(createRelay({ targetBaseUrl: slow.url, stages: [retry({ maxRetries: 0, deadline: 300 }), pool] }));
  try {
    const first = fetchRaw(holder.url);
    assert.ok(await waitFor(() => held.length === 1, 3_000), 'the first request holds the slot');
    const waited = await fetchRaw(waiter.url);
    assert.is(waited.status, 504, 'the deadline cut the wait');
    assert.is(held.length, 1, 'the cut attempt never reached the target');
    const state = pool.targets()[0]!;
    assert.is(state.consecutiveFailures, 0, 'a wait in the circuit queue was counted against the target');
    assert.is(state.ejections, 0);
    held[0]!.end('done');
    assert.is((await first).status, 200);
    // The cut waiter left the queue at the deadline: the freed slot is not handed to it (and counted) now.
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.is(held.length, 1, 'the cut attempt was sent once the slot was free');
    assert.is(state.consecutiveFailures, 0, 'the cut attempt was counted against the target once it got the slot');
  } finally {
    for (const res of held) res.destroy();
    await waiter.close();
    await holder.close();
    await slow.close();
  }
});

// The held attempt reaches balance() after the deadline, or passes it and is held before its transport.
const placements = [
  ['reaches balance() after the retry deadline passed', (pool: Stage) => [holdEachAttempt(400), pool]],
  ['is held after balance() (between the pool and its transport) past the retry deadline', (pool: Stage) => [pool, holdEachAttempt(400)]],
] as const;

for (const [where, inner] of placements) {
  test(`an attempt that ${where} is not sent, nor counted against (or ejecting) its target`, async () => {
    const held: ServerResponse[] = [];
    let requests = 0;
    const target = await startUpstream((_req, res) => {
      requests++;
      held.push(res);
    });
    const pool = balance({ targets: [target.url], outlier: { consecutiveFailures: 1 } });
    const served = await serveRelay(createRelay({ targetBaseUrl: target.url, stages: [retry({ maxRetries: 0, deadline: 150 }), ...inner(pool)] }));
    try {
      const response = await fetchRaw(served.url);
      assert.is(response.status, 504);
      await delay(600); // the held attempt reaches its transport meanwhile
      const state = pool.targets()[0]!;
      assert.is(requests, 0, 'the late attempt was sent');
      assert.is(state.inFlight, 0);
      assert.is(state.ejections, 0, 'the target was ejected for a deadline that had passed before its attempt was sent');
      assert.is(state.consecutiveFailures, 0, 'an attempt cut before it was sent was counted against its target');
    } finally {
      for (const res of held) res.destroy();
      await served.close();
      await target.close();
    }
  });
}

test.run();
