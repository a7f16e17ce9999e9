// Review s36 (issue 23, reuse): @relay/body's plain functions (packages/body/README.md "Plain
// functions"), called as another framework would, checked against compress() on the same options.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cachedNegotiator, compress, compressionPlanner, negotiateEncoding } from '@relay/body';

function thrown(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return `${(error as Error).constructor.name}: ${(error as Error).message}`;
  }
  return 'nothing';
}

test('negotiateEncoding/cachedNegotiator check `encodings` as compress() does: only "br" and "gzip", a non-empty array', () => {
  // packages/body/README.md: encodings is `('br' | 'gzip')[]`; compress({ encodings: ['deflate'] }) throws
  // naming encodings. negotiateEncoding's result type is 'br' | 'gzip' | 'identity' | null, yet with
  // encodings ['deflate'] it answers 'deflate', and a string 'gzip' is read letter by letter.
  for (const encodings of [['deflate'], 'gzip', ['zstd'], []]) {
    assert.match(thrown(() => compress({ encodings: encodings as never })), /encodings/, `compress ${JSON.stringify(encodings)}`);
    const plain = thrown(() => negotiateEncoding('deflate, gzip, zstd', { encodings: encodings as never }));
    assert.match(plain, /encodings/, `negotiateEncoding ${JSON.stringify(encodings)}: ${plain}`);
    assert.match(thrown(() => cachedNegotiator({ encodings: encodings as never })), /encodings/, `cachedNegotiator ${JSON.stringify(encodings)}`);
  }
});

test('negotiateEncoding: RFC 9110 §12.5.3 q-values (regression)', () => {
  const on = { encodings: ['br', 'gzip'] as Array<'br' | 'gzip'> };
  assert.is(negotiateEncoding(undefined, on), 'identity');
  assert.is(negotiateEncoding('GZIP', on), 'gzip');
  assert.is(negotiateEncoding('br;q=0.5, gzip', on), 'gzip');
  assert.is(negotiateEncoding('gzip;q=0, *', on), 'br');
  assert.is(negotiateEncoding('*;q=0', on), null);
  assert.is(negotiateEncoding('identity;q=0', on), null);
  assert.is(negotiateEncoding('gzip, identity;q=0', on), 'gzip');
});

test('compressionPlanner: the decisions compress() makes, as documented (regression)', () => {
  const plan = compressionPlanner();
  assert.equal(plan('GET', 'gzip', 200, { 'content-type': 'application/json', 'content-length': '5000' }), { coding: 'gzip', vary: true, flush: false });
  assert.equal(plan('GET', 'gzip', 200, { 'content-type': 'application/json', 'content-length': '10' }), { coding: null, vary: false, flush: false });
  assert.equal(plan('GET', 'gzip', 200, { 'content-type': 'text/event-stream' }), { coding: 'gzip', vary: true, flush: true });
  assert.equal(plan('GET', 'gzip', 200, { 'content-type': 'text/html', 'cache-control': 'No-Transform' }), { coding: null, vary: false, flush: false });
  assert.equal(plan('GET', 'gzip', 206, { 'content-type': 'text/html' }), { coding: null, vary: false, flush: false });
  assert.match(thrown(() => compressionPlanner({ threshhold: 1 } as never)), /"threshhold".*threshold/);
});

test.run();
