// A number option given as a string (config read from the environment or a query string:
// `maxRetries: process.env.RETRIES`) is a TypeError that says it got a string, as docs/error-handling.md
// ("Errors when the relay is built") promises for a wrong type and as core says for its own numbers
// (`timeout.read must be a number, got string`); a RangeError is for a number out of range.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { retry, type RetryOptions } from '../src/index.js';

test('a number option given as a string is a TypeError that says it got a string, as core\'s timeout does', () => {
  // Control: core's own wording for the same mistake.
  assert.throws(() => createRelay({ targetBaseUrl: 'http://127.0.0.1:1', timeout: { read: '100' as unknown as number } }), (error: Error) => error instanceof TypeError && /got string/.test(error.message));
  const cases: Array<[keyof RetryOptions, string]> = [
    ['maxRetries', '3'],
    ['backoffFactor', '200'],
    ['maxBackoff', '10000'],
    ['maxReplayBytes', '65536'],
    ['retryAfter', '10000'],
    ['deadline', '5000'],
  ];
  for (const [option, value] of cases) {
    let thrown: unknown;
    try {
      retry({ [option]: value } as unknown as RetryOptions);
    } catch (error) {
      thrown = error;
    }
    assert.instance(thrown, TypeError, `${option}: '${value}' → ${String(thrown)}`);
    assert.match((thrown as Error).message, option);
    assert.match((thrown as Error).message, /string|"\d+"|'\d+'/, `${option}: the message says the value is a string: ${(thrown as Error).message}`);
  }
});

test('a number out of range is still a RangeError, and retryAfter names false as the other choice', () => {
  assert.throws(() => retry({ maxRetries: -1 }), (error: Error) => error instanceof RangeError && error.message === 'maxRetries must be a whole number ≥ 0, got -1');
  assert.throws(() => retry({ deadline: Number.NaN }), (error: Error) => error instanceof RangeError && /^deadline must be a finite number/.test(error.message));
  assert.throws(() => retry({ maxReplayBytes: 1.5 }), (error: Error) => error instanceof RangeError && /^maxReplayBytes/.test(error.message));
  assert.throws(() => retry({ retryAfter: true as unknown as false }), (error: Error) => error instanceof TypeError && error.message === 'retryAfter must be a number or false, got boolean');
  assert.throws(() => retry({ maxBackoff: true as unknown as number }), (error: Error) => error instanceof TypeError && error.message === 'maxBackoff must be a number, got boolean');
  retry({ retryAfter: false, maxRetries: 2, deadline: 1000 });
});

test.run();
