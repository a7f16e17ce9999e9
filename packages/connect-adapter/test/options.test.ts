import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay } from '@relay/core';
import { toConnect, type ConnectOptions } from '../src/index.js';

// Options are checked when toConnect is called, with errors naming the option.

const relay = createRelay({ targetBaseUrl: 'http://127.0.0.1:9' });

test('toConnect refuses what is not a relay', () => {
  for (const value of [null, undefined, {}, { dispatch: 'no' }, relay.handle]) {
    assert.throws(() => toConnect(value as unknown as Relay), (error: Error) => error instanceof TypeError && /createRelay\(\)/.test(error.message));
  }
});

test('toConnect checks errors and the options object', () => {
  assert.throws(() => toConnect(relay, { errors: 'throw' } as unknown as ConnectOptions), (error: Error) => error instanceof TypeError && /^errors must be "respond" or "next", got "throw"/.test(error.message));
  assert.throws(() => toConnect(relay, null as unknown as ConnectOptions), (error: Error) => error instanceof TypeError && /options/.test(error.message));
  assert.type(toConnect(relay), 'function');
  assert.type(toConnect(relay, { errors: 'next' }), 'function');
});

test('the middleware is a named function (stack traces say which one failed)', () => {
  assert.is(toConnect(relay).name, 'relayMiddleware');
  assert.is(toConnect(relay).length, 3, 'three parameters: not mistaken for an error handler');
});

test.run();
