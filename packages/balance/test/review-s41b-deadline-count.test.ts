// Second round on deadline-cut attempts and outlier ejection: "A deadline that had passed before the
// attempt was sent says nothing about the target" (pool.ts countsAsFailure). retry({ deadline }) no longer
// marks the client aborted (it calls client.abortAttempt), so balance()'s `sentLive = !client.aborted`
// is always true: an attempt that reaches the pool after its deadline (held in a stage between retry()
// and balance()) is cut at its transport before any byte leaves, and is counted against its target.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServerResponse } from 'node:http';
import { createRelay, type ProxyRequest, type Stage } from '@relay/core';
import { retry } from '@relay/retry';
import { delay, fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { balance } from '../src/index.js';

/** A stage between retry() and balance() that holds each attempt `ms` (a per-attempt token fetch). */
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

test('an attempt that reaches balance() after the retry deadline passed is not counted against (or ejecting) its target', async () => {
  const held: ServerResponse[] = [];
  let requests = 0;
  const target = await startUpstream((_req, res) => {
    requests++;
    held.push(res);
  });
  const pool = balance({ targets: [target.url], outlier: { consecutiveFailures: 1 } });
  const served = await serveRelay(createRelay({ targetBaseUrl: target.url, stages: [retry({ maxRetries: 0, deadline: 150 }), holdEachAttempt(400), pool] }));
  try {
    const response = await fetchRaw(served.url);
    assert.is(response.status, 504);
    await delay(600); // the held attempt reaches the pool and its transport meanwhile
    const state = pool.targets()[0]!;
    assert.is(requests, 0, 'the late attempt was not sent');
    assert.is(state.inFlight, 0);
    assert.is(state.ejections, 0, 'the target was ejected for a deadline that had passed before its attempt was sent');
    assert.is(state.consecutiveFailures, 0, 'a deadline that passed before the attempt was sent was counted against the target');
  } finally {
    for (const res of held) res.destroy();
    await served.close();
    await target.close();
  }
});

test.run();
