import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { retry, retryPolicy, withRetry } from '../src/index.js';

test('retry(), retryPolicy() and withRetry() refuse a misspelled key, naming the nearest valid one', () => {
  // `maxRetry` used to be accepted and retried nothing.
  assert.throws(() => retry({ maxRetry: 3 } as never), /retry: unknown option "maxRetry" \(did you mean "maxRetries"\?/);
  assert.throws(() => retryPolicy({ jiter: true } as never), /retryPolicy: unknown option "jiter" \(did you mean "jitter"\?/);
  assert.throws(() => withRetry(async () => 1, { method: 'GET', signl: undefined } as never), /withRetry: unknown option "signl" \(did you mean "signal"\?/);
});

test('every documented key is accepted', () => {
  retry({ maxRetries: 1, backoffFactor: 1, maxBackoff: 1, jitter: true, statuses: [503], errors: [], methods: ['GET'], maxReplayBytes: 1, retryAfter: false, deadline: 0 });
  retryPolicy({ maxRetries: 1 });
});

test.run();
