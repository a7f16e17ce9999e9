import { test } from 'uvu';
import { httpLoad } from './load.js';

test('fast subset: 2 000 requests at 100 concurrent through all stages, zero errors, fds and heap flat', async () => {
  await httpLoad(2_000, 100);
});

test.run();
