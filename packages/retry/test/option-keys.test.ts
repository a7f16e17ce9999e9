// retryPolicy's per-call outcome rejects an unknown key with a TypeError naming the nearest valid one
// (the options of retry(), retryPolicy() and withRetry() already did).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { retryPolicy, type RetryOutcome } from '../src/index.js';

const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`unknown option "${key}"`) && error.message.includes(`did you mean "${nearest}"`);

test('shouldRetry and delay: an outcome { statu } names "status"; a non-object is a TypeError', () => {
  const policy = retryPolicy({ maxRetries: 2, statuses: [503] });
  const misspelled = { method: 'GET', statu: 503 } as unknown as RetryOutcome;
  assert.throws(() => policy.shouldRetry(1, misspelled), unknownKey('statu', 'status'));
  assert.throws(() => policy.delay(1, { metod: 'GET', status: 503 } as unknown as RetryOutcome), unknownKey('metod', 'method'));
  assert.throws(() => policy.shouldRetry(1, 503 as unknown as RetryOutcome), (error: Error) => error instanceof TypeError && /outcome must be an object/.test(error.message));
  assert.is(policy.shouldRetry(1, { method: 'GET', status: 503 }), true);
});

test.run();
