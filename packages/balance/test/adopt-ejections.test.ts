// adopt() carries a target's ejection count together with when its last ejection started
// (`lastEjectionAt`): without that time a count carried past an ended ejection would start over at
// the next failure (countFailure resets it once the target stayed in for a whole maxEjectionTime
// after its last ejection), and a flapping target would get the short first ejection after every
// reload. The time is taken as it is, not worked back from the ejection's end with the new pool's
// baseEjectionTime.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { closedPort, serveRelay, waitFor } from '@relay/testkit';
import { balance, type TargetState } from '../src/index.js';
import { load, named } from './helpers.js';

const state = (url: string, fields: Partial<TargetState>): TargetState => ({
  url,
  weight: 1,
  inFlight: 0,
  pending: 0,
  healthy: true,
  ejectedUntil: 0,
  ejections: 0,
  lastEjectionAt: 0,
  consecutiveFailures: 0,
  circuitOpen: false,
  ...fields,
});

test('targets() keeps lastEjectionAt after the ejection ended; a pool that adopts it goes on counting from there', async () => {
  const alive = await named('alive');
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const outlier = { consecutiveFailures: 1, maxEjectionTime: 20_000 };
  const first = balance({ targets: [alive.url, dead], outlier: { ...outlier, baseEjectionTime: 200 } });
  const deadOf = (pool: typeof first) => pool.targets().find((target) => target.url === dead)!;
  assert.is(deadOf(first).lastEjectionAt, 0, 'never ejected: 0');
  const served = await serveRelay(createRelay({ targetBaseUrl: alive.url, stages: [first] }));
  const before = Date.now();
  await load(served.url, 2, 1);
  await served.close();
  const ejected = deadOf(first);
  assert.is(ejected.ejections, 1);
  assert.ok(ejected.lastEjectionAt >= before && ejected.lastEjectionAt <= Date.now(), 'the time of the ejection');
  assert.ok(await waitFor(() => deadOf(first).ejectedUntil === 0, 3_000), 'it returns');
  assert.is(deadOf(first).lastEjectionAt, ejected.lastEjectionAt, 'kept after the ejection ended');

  // A longer base time in the new pool, as a reload may bring.
  const next = balance({ targets: [alive.url, dead], outlier: { ...outlier, baseEjectionTime: 300 } });
  next.adopt(first.targets());
  assert.equal([deadOf(next).ejections, deadOf(next).lastEjectionAt, deadOf(next).ejectedUntil], [1, ejected.lastEjectionAt, 0]);
  const served2 = await serveRelay(createRelay({ targetBaseUrl: alive.url, stages: [next] }));
  await load(served2.url, 2, 1);
  await served2.close();
  const again = deadOf(next);
  assert.is(again.ejections, 2, 'the second ejection counts as the second');
  const left = again.ejectedUntil - Date.now();
  assert.ok(left > 300 && left <= 600, `it lasts two of the new pool's base times: ${left} ms left`);
  await alive.close();
});

test('adopt takes lastEjectionAt as it is, with an ejection in progress or without outlier detection none', () => {
  const a = 'http://127.0.0.1:1';
  const now = Date.now();
  const states = [state(a, { ejectedUntil: now + 60_000, ejections: 3, lastEjectionAt: now - 1_000 })];
  const pool = balance({ targets: [a], outlier: { baseEjectionTime: 100 } });
  pool.adopt(states);
  assert.equal([pool.targets()[0]!.ejectedUntil, pool.targets()[0]!.lastEjectionAt], [now + 60_000, now - 1_000], 'not worked back from the end with this pool\'s base time');
  const off = balance({ targets: [a], outlier: false });
  off.adopt(states);
  assert.equal([off.targets()[0]!.ejections, off.targets()[0]!.lastEjectionAt], [0, 0], 'no outlier detection: no ejection state taken');
});

test.run();
