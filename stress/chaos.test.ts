import { test } from 'uvu';
import { chaosRun } from './chaos.js';

test('chaos (10 s): hostile clients and a faulty upstream; no honest request fails, fds, heap and inFlight back within 10 %', async () => {
  await chaosRun(10_000);
});

test.run();
