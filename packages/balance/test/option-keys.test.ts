// balance()'s nested options reject an unknown key with a TypeError naming the nearest valid one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { balance } from '../src/index.js';

const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`unknown option "${key}"`) && error.message.includes(`did you mean "${nearest}"`);

const targets = ['http://127.0.0.1:9'];

test('hashKey: { heder } names "header", { cokie } names "cookie"', () => {
  assert.throws(() => balance({ targets, strategy: 'hash', hashKey: { heder: 'x-user' } as never }), unknownKey('heder', 'header'));
  assert.throws(() => balance({ targets, strategy: 'hash', hashKey: { cokie: 'sid' } as never }), unknownKey('cokie', 'cookie'));
  assert.throws(() => balance({ targets, strategy: 'hash', hashKey: 5 as never }), (error: Error) => error instanceof TypeError && /hashKey must be/.test(error.message));
});

test.run();
