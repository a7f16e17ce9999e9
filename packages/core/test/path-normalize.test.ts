// decodeUnreserved: the one percent-encoding normaliser every routing decision uses (the gateway's
// routes and @relay/routing's conditions and rewrites), RFC 3986 §6.2.2.1 and §6.2.2.2.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeUnreserved, hasStrayPercent, normalizeEscapes } from '../src/transport/index.js';

test('escapes of unreserved characters in the path are decoded, in either hex case', () => {
  assert.is(decodeUnreserved('/%6Cogin%2D%2e%5F%7E%41%30'), '/login-._~A0');
  assert.is(decodeUnreserved('/%61dmin/users'), '/admin/users');
  assert.is(decodeUnreserved('/%7euser'), '/~user');
});

test('reserved and non-ASCII escapes stay encoded (decoding them would change the path)', () => {
  assert.is(decodeUnreserved('/a%2Fb%3Fc%25d%20e%23f'), '/a%2Fb%3Fc%25d%20e%23f');
  assert.is(decodeUnreserved('/caf%C3%A9'), '/caf%C3%A9');
});

test('escapes that stay encoded get upper-case hex digits (RFC 3986 §6.2.2.1)', () => {
  assert.is(decodeUnreserved('/caf%c3%a9/menu'), '/caf%C3%A9/menu');
  assert.is(decodeUnreserved('/a%2fb%3F%2a'), '/a%2Fb%3F%2A');
  assert.is(decodeUnreserved('/%e2%82%aC%7e'), '/%E2%82%AC~');
});

test('the query is left byte for byte, with or without escapes in the path', () => {
  assert.is(decodeUnreserved('/%6C?q=%6C%c3%a9'), '/l?q=%6C%c3%a9');
  assert.is(decodeUnreserved('/plain?q=%6c&next=%2f'), '/plain?q=%6c&next=%2f');
  assert.is(decodeUnreserved('/caf%c3%a9?'), '/caf%C3%A9?');
});

test('a "%" that starts no escape becomes %25: the normal form is a fixed point, never a new escape', () => {
  assert.is(decodeUnreserved('/100%'), '/100%25');
  assert.is(decodeUnreserved('/a%zz%4'), '/a%25zz%254');
  assert.is(decodeUnreserved('/%%41'), '/%25A');
  for (const path of ['/%6%31dmin', '/%%36%31dmin', '/%2561dmin', '/caf%c3%a9']) {
    const once = decodeUnreserved(path);
    assert.is(decodeUnreserved(once), once, path);
  }
  assert.ok(hasStrayPercent('/%6%31dmin'));
  assert.not.ok(hasStrayPercent('/a?q=100%'));
  assert.not.ok(hasStrayPercent('/%41%2F'));
});

test('normalizeEscapes reads a path alone: a "?" (a glob wildcard) is a character, not a query', () => {
  assert.is(normalizeEscapes('/v?/%7euser/**'), '/v?/~user/**');
  assert.is(normalizeEscapes('/plain'), '/plain');
});

test('dot segments come out decoded, for the relay’s path checks to refuse', () => {
  assert.is(decodeUnreserved('/a/%2E%2e/b'), '/a/../b');
});

test('no "%" in the path: the target comes back unchanged (the fast path, which builds nothing)', () => {
  // JavaScript cannot observe string identity; the fast path's "nothing built" is in the code and
  // measured by benchmarks/instructions.mjs. This pins the result, query escapes included.
  for (const target of ['/', '/api/users?id=7', '/~user', '', '/x?q=%41', '/x?q=%c3%a9']) assert.is(decodeUnreserved(target), target);
});

test.run();
