// Review s39 (issue 21, concurrencyLimit): a slot must come back on every path. Core accepts a stage answer whose
// body is left out ("a body left out is no body, as null says", checkedResponse) and turns an answer it cannot send
// (a string body) into a 500, "never a hung request". concurrencyLimit sits between: it must neither turn the first
// into a 500 nor keep a slot for good on either. Black-box: real upstream, real relay, real client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { concurrencyLimit } from '../src/index.js';

/** A stage that answers by itself with `answer` (an auth check's 204, a health check), as a JS user writes it. */
function answering(answer: Record<string, unknown>): Stage {
  return { name: 'answering', wrap: () => async () => ({ statusMessage: '', headers: {}, ...answer }) as never };
}

test('an inner stage answering 204 with its body left out: 204 through concurrencyLimit as without it, and the slot comes back', async () => {
  const upstream = await startUpstream();
  const bare = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [answering({ status: 204 })] }));
  const limited = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [concurrencyLimit({ max: 1, key: 'route' }), answering({ status: 204 })] }));
  try {
    assert.is((await fetchRaw(bare.url)).status, 204, 'core serves a body left out as no body');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetchRaw(limited.url)).status);
    assert.equal(statuses, [204, 204, 204], 'one at a time, each request finished: never 500, never 429');
  } finally {
    await bare.close();
    await limited.close();
    await upstream.close();
  }
});

test('an inner stage answering a body core refuses (a string): 500 as without the limit, and the slot is not kept for good', async () => {
  const upstream = await startUpstream();
  const limited = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [concurrencyLimit({ max: 1, key: 'route' }), answering({ status: 200, body: 'hello' })] }),
  );
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetchRaw(limited.url)).status);
    assert.equal(statuses, [500, 500, 500], 'each request ended: its slot is free again (a 429 means a slot leaked)');
  } finally {
    await limited.close();
    await upstream.close();
  }
});

test.run();
