// The key option of rateLimit() and concurrencyLimit() (compileKey) names the nearest valid key of a misspelled { header } / { cookie }.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileKey, concurrencyLimit, rateLimit } from '../src/index.js';

const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`unknown option "${key}"`) && error.message.includes(`did you mean "${nearest}"`);

test('rateLimit key: { heder } names "header"', () => {
  assert.throws(() => rateLimit({ points: 5, duration: 1000, key: { heder: 'x-api-key' } as never }), unknownKey('heder', 'header'));
});

test('concurrencyLimit key: { cokie } names "cookie"', () => {
  assert.throws(() => concurrencyLimit({ max: 5, key: { cokie: 'sid' } as never }), unknownKey('cokie', 'cookie'));
});

test('compileKey names the option it checks', () => {
  assert.throws(() => compileKey({ haeder: 'x' }, 'rateLimit: key'), (error: Error) => unknownKey('haeder', 'header')(error) && error.message.startsWith('rateLimit: key: '));
});

test.run();
