import { test } from 'uvu';
import { httpLoad } from './load.js';

test('20 000 requests at 100 concurrent through all stages, zero errors, fds and heap back within 10%', async () => {
  await httpLoad(20_000, 100);
});

test.run();
