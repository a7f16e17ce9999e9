import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertKnownKeys, createRelay } from '../src/index.js';
import { nearestName } from '../src/known-keys.js';

const message = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    assert.instance(error, TypeError);
    return (error as Error).message;
  }
  throw new Error('expected a TypeError');
};

test('createRelay rejects a misspelled option, naming it and the nearest valid one', () => {
  const text = message(() => createRelay({ targetBaseUrl: 'http://h', mountpath: '/api' } as never));
  assert.match(text, /createRelay: unknown option "mountpath"/);
  assert.match(text, /did you mean "mountPath"\?/);
  assert.match(message(() => createRelay({ targetBaseUrl: 'http://h', shutdownTimout: 5 } as never)), /did you mean "shutdownTimeout"/);
  assert.match(message(() => createRelay({ targetBaseUrl: 'http://h', stage: [] } as never)), /did you mean "stages"/);
});

test('the tls option rejects a misspelled key, naming it and the nearest valid one', () => {
  const text = message(() => createRelay({ targetBaseUrl: 'https://h', tls: { rejectUnauthorised: false } as never }));
  assert.match(text, /tls: unknown option "rejectUnauthorised" \(did you mean "rejectUnauthorized"\?/);
});

test('a name far from every option gets no guess, only the list', () => {
  const text = message(() => assertKnownKeys({ zzzzzzzz: 1 }, ['maxRetries', 'statuses'], 'retry'));
  assert.is(text, 'retry: unknown option "zzzzzzzz" (expected one of maxRetries, statuses)');
  assert.is(nearestName('maxRetry', ['maxRetries', 'statuses', 'methods']), 'maxRetries');
  assert.is(nearestName('MOUNTPATH', ['mountPath', 'timeout']), 'mountPath');
});

test('valid options still pass', () => {
  createRelay({ targetBaseUrl: 'https://h', mountPath: '/a', tls: { rejectUnauthorized: true, servername: 'h', ca: [] } });
});

test.run();
