// Review s39 (issue 21, option validation): a NaN count or duration is refused, and the message says what was given.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { optionErrorMessage } from '@relay/testkit';
import { concurrencyLimit, rateLimit } from '../src/index.js';

test('NaN points, duration, burst and max are refused with a message naming NaN (not "must be a number, got number")', () => {
  for (const run of [
    () => rateLimit({ points: Number.NaN, duration: 1000 }),
    () => rateLimit({ points: 10, duration: Number.NaN }),
    () => rateLimit({ points: 10, duration: 1000, burst: Number.NaN }),
    () => concurrencyLimit({ max: Number.NaN }),
  ]) {
    const message = optionErrorMessage(run);
    assert.match(message, /NaN/, message);
    assert.not.match(message, /must be a number, got number/, message);
  }
});

test.run();
