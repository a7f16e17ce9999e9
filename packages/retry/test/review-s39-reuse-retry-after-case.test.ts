// Review s39 (reuse, issue 23): retryPolicy's outcome takes "a header record or a Headers"; HTTP
// field names are case-insensitive (RFC 9110 §5.1), and headerRules reads records "in any case".
// A record written as an SDK or a hand-made outcome writes it, `{ 'Retry-After': '3600' }`, must
// be read as the stage reads the server's Retry-After: a wait longer than `retryAfter` ends the
// retries, a short one is the wait.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { retryPolicy, withRetry } from '../src/index.js';

test('retryPolicy: Retry-After in a header record is found whatever the case of its name', () => {
  const policy = retryPolicy({ maxRetries: 2, backoffFactor: 50 });
  for (const name of ['retry-after', 'Retry-After', 'RETRY-AFTER']) {
    assert.is(policy.shouldRetry(1, { method: 'GET', status: 503, headers: { [name]: '3600' } }), false, `${name}: an hour is beyond retryAfter (10 s)`);
    assert.is(policy.delay(1, { method: 'GET', status: 503, headers: { [name]: '2' } }), 2000, `${name}: the server's wait, not the 50 ms backoff`);
  }
});

test('withRetry: an SDK error with status 503 and { "Retry-After": "3600" } is not retried after 50 ms', async () => {
  let calls = 0;
  const sdkError = Object.assign(new Error('Service Unavailable'), { status: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': '3600' } });
  const failure = await withRetry(
    async () => {
      calls++;
      throw sdkError;
    },
    { method: 'GET', maxRetries: 2, backoffFactor: 50 },
  ).catch((error: unknown) => error);
  assert.is(failure, sdkError, 'the last error is thrown');
  assert.is(calls, 1, 'the server asked for an hour: the retries end, as the stage ends them');
});

test.run();
