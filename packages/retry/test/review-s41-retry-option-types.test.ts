// Review s41 retry: a number option given as a string (config read from the environment or a query
// string: `maxRetries: process.env.RETRIES`) is a RangeError whose message reads "maxRetries must be a
// whole number ≥ 0, got 3": the value looks valid and the type is not said. docs/error-handling.md
// ("Errors when the relay is built") promises a TypeError for a wrong type, and core says so for its own
// numbers (`timeout.read must be a number, got string`).
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

test.run();
