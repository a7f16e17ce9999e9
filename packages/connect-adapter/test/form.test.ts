import qs from 'qs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeForm } from '../src/form.js';

// Form re-serialisation, checked against qs (what body-parser's extended parser uses).

test('flat fields and repeated keys come out as URLSearchParams makes them', () => {
  assert.is(encodeForm({ a: '1', b: ['x', 'y'], c: 'a b&c' }), 'a=1&b=x&b=y&c=a+b%26c');
  assert.is(encodeForm({ 'b[c]': '3' }), 'b%5Bc%5D=3', 'a flat key with brackets stays one key');
});

test('nested values use brackets that qs reads back to the same object', () => {
  const cases: unknown[] = [
    { user: { name: 'ada', roles: ['admin', 'dev'] } },
    { list: [{ id: '1' }, { id: '2', tags: ['x'] }] },
    { deep: { a: { b: { c: 'd' } } }, plain: 'é ✓' },
    { sparse: { 0: 'a', 30: 'b' } },
  ];
  for (const value of cases) assert.equal(qs.parse(encodeForm(value)!), value);
});

test('null becomes an empty value and undefined is left out, as qs.stringify does', () => {
  assert.is(encodeForm({ a: null, b: undefined, c: 1, d: true }), 'a=&c=1&d=true');
});

test('what a round trip could not tell apart is refused (null)', () => {
  assert.is(encodeForm({ user: { 'na[me]': 'x' } }), null, 'a nested key with brackets');
  assert.is(encodeForm({ 'a[b]': { c: 'd' } }), null, 'a bracketed key holding a nested value');
  assert.is(encodeForm({ when: new Date(0) }), null);
  assert.is(encodeForm({ fn: () => 1 }), null);
  assert.is(encodeForm(['a']), null);
  assert.is(encodeForm('a=1'), null);
});

test.run();
