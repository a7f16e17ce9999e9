import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loggedPath } from '../src/redact.js';
import { clfTime, isoTime, JsonMemo, jsonString, jsonStringOf } from '../src/text.js';

test('isoTime() writes what Date#toISOString writes, across seconds, backwards and forwards', () => {
  const base = Date.UTC(2026, 11, 1, 23, 59, 58, 0);
  // Millisecond fractions, the 0/9/99/999 paddings, a second and a day boundary, then back in time.
  const offsets = [0, 0.4, 9, 9.99, 99, 100, 999, 999.7, 1000, 1001, 2005.5, 86_400_123, 5, -1, -1000.25];
  for (const offset of offsets) {
    const time = base + offset;
    assert.is(isoTime(time), new Date(Math.floor(time)).toISOString(), `offset ${offset}`);
  }
});

test('clfTime() is the Common Log Format time in UTC', () => {
  assert.is(clfTime(Date.UTC(2000, 9, 10, 13, 55, 36, 512)), '10/Oct/2000:13:55:36 +0000');
  assert.is(clfTime(Date.UTC(2026, 0, 2, 3, 4, 5)), '02/Jan/2026:03:04:05 +0000');
});

test('jsonString() is JSON.stringify for plain and tricky strings', () => {
  const samples = ['', '/a/b?c=[REDACTED]', 'quote " here', 'back\\slash', 'tab\there', 'nul\u0000', 'del\u007f', 'é ü 中文 😀', 'lone \ud800 surrogate', '\u2028'];
  for (const sample of samples) {
    assert.is(jsonString(sample), JSON.stringify(sample), JSON.stringify(sample));
    assert.is(JSON.parse(jsonString(sample)), sample);
  }
});

test('jsonStringOf() of a logged path, scanned on the target it came from, is JSON.stringify of the path', () => {
  const long = `/${'a'.repeat(2046)}😀?k=v`;
  const targets = ['/a?b=1&c', '/q"uote?x="y"', '/back\\slash?k=\\', '/tab\t?k=\u0001', '/é?ü=中文', long, '/😀?k=\ud800'];
  for (const target of targets) {
    for (const mode of ['redact', 'drop', 'keep'] as const) {
      const path = loggedPath(target, mode);
      assert.is(jsonStringOf(path, target), JSON.stringify(path), `${mode} ${JSON.stringify(target)}`);
    }
  }
});

test('JsonMemo gives the JSON of each value it is handed, whether it repeats or changes', () => {
  const memo = new JsonMemo();
  // The empty string first: the memo's starting value, which must not be mistaken for a cached one.
  const values = ['', 'agent/1', 'agent/1', 'quote " here', 'agent/1', '', 'back\\slash', 'back\\slash'];
  for (const value of values) assert.is(memo.of(value), JSON.stringify(value), JSON.stringify(value));
});

test.run();
