import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backoffDelay } from '../src/backoff.js';
import { defaultErrors, defaultStatuses, idempotentMethods, parseRetryAfter, RetryPolicy, waitTooLong } from '../src/policy.js';

test('backoff: attempt n waits factor * 2^(n-1), capped', () => {
  const backoff = { factor: 200, max: 1000, jitter: false };
  assert.equal([1, 2, 3, 4, 5].map((n) => backoffDelay(n, backoff)), [200, 400, 800, 1000, 1000]);
  assert.is(backoffDelay(1, { factor: 0, max: 1000, jitter: false }), 0);
});

test('backoff: full jitter picks between 0 and the capped delay', () => {
  const backoff = { factor: 200, max: 1000, jitter: true };
  assert.is(backoffDelay(3, backoff, () => 0), 0);
  assert.is(backoffDelay(3, backoff, () => 0.5), 400);
  assert.is(backoffDelay(3, backoff, () => 0.9999), 800);
  assert.is(backoffDelay(9, backoff, () => 0.5), 500, 'the cap applies before jitter');
  for (let i = 0; i < 100; i++) {
    const delay = backoffDelay(2, backoff);
    assert.ok(delay >= 0 && delay <= 400);
  }
});

test('Retry-After: delay-seconds and the three HTTP-date forms; junk is ignored', () => {
  const now = Date.parse('Sun, 06 Nov 1994 08:49:30 GMT');
  assert.is(parseRetryAfter('1', now), 1000);
  assert.is(parseRetryAfter(' 120 ', now), 120_000);
  assert.is(parseRetryAfter(['2', '9'], now), 2000);
  assert.is(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', now), 7000);
  assert.is(parseRetryAfter('Sunday, 06-Nov-94 08:49:37 GMT', now), 7000);
  assert.is(parseRetryAfter('Sun Nov  6 08:49:37 1994', now) !== null, true);
  assert.is(parseRetryAfter('Sun, 06 Nov 1994 08:00:00 GMT', now), 0, 'a date in the past means now');
  assert.is(parseRetryAfter(undefined, now), null);
  assert.is(parseRetryAfter('-1', now), null);
  assert.is(parseRetryAfter('1.5', now), null);
  assert.is(parseRetryAfter('soon', now), null);
  assert.is(parseRetryAfter('2024-01-01T00:00:00Z', now), null, 'ISO 8601 is not an HTTP-date');
  assert.is(parseRetryAfter('Mon, 99 Foo 1994 08:49:37 GMT', now), null);
});

test('policy: idempotent methods by default, statuses and error codes as listed', () => {
  const policy = new RetryPolicy({ statuses: defaultStatuses, errors: defaultErrors, methods: idempotentMethods, retryAfter: 10_000 });
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) assert.ok(policy.retriesMethod(method), method);
  assert.not.ok(policy.retriesMethod('POST'));
  assert.not.ok(policy.retriesMethod('PATCH'));
  assert.ok(policy.retriesStatus(502) && policy.retriesStatus(503) && policy.retriesStatus(504));
  assert.not.ok(policy.retriesStatus(500));
  assert.not.ok(policy.retriesStatus(429));
  for (const code of ['ERR_UPSTREAM_UNREACHABLE', 'ERR_UPSTREAM_RESET', 'ERR_CONNECT_TIMEOUT', 'ERR_READ_TIMEOUT']) assert.ok(policy.retriesError(code), code);
  assert.not.ok(policy.retriesError('ERR_WRITE_TIMEOUT'));
  assert.not.ok(policy.retriesError('ERR_UPSTREAM_PROTOCOL'));
  const optedIn = new RetryPolicy({ statuses: [429], errors: [], methods: ['get', 'post'], retryAfter: 10_000 });
  assert.ok(optedIn.retriesMethod('POST'));
});

test('policy: Retry-After only on 429 and 503, capped, or ignored when turned off', () => {
  const policy = new RetryPolicy({ statuses: [429, 502, 503], errors: [], methods: ['GET'], retryAfter: 5000 });
  assert.is(policy.retryAfterDelay(503, { 'retry-after': '2' }), 2000);
  assert.is(policy.retryAfterDelay(429, { 'retry-after': '5' }), 5000);
  assert.is(policy.retryAfterDelay(503, { 'retry-after': '6' }), waitTooLong);
  assert.is(policy.retryAfterDelay(502, { 'retry-after': '2' }), null);
  assert.is(policy.retryAfterDelay(503, {}), null);
  const ignoring = new RetryPolicy({ statuses: [503], errors: [], methods: ['GET'], retryAfter: false });
  assert.is(ignoring.retryAfterDelay(503, { 'retry-after': '2' }), null);
});

test.run();
