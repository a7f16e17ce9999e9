import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RelayError } from '../src/index.js';
import { assertSafePath, mapRequestPath, normalizePathOption } from '../src/request/path.js';
import { splitAbsoluteForm } from '../src/request/path.js';

const map = (target: string, mount = '', base = '') => mapRequestPath(target, mount, base);
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error instanceof RelayError ? error.code : `not a RelayError: ${String(error)}`;
  }
};

test('mount path is stripped, with and without upstreamPrefix (the seed table)', () => {
  assert.is(map('/auth/login', '/auth', ''), '/login');
  assert.is(map('/auth/login', '/auth', '/api/v1'), '/api/v1/login');
  assert.is(map('/users', '', '/api/v1'), '/api/v1/users');
  assert.is(map('/api/users', '/api', '/api/v2'), '/api/v2/users');
});

test('a bare mount path forwards to the prefix root; a trailing slash is kept', () => {
  assert.is(map('/auth', '/auth', ''), '/');
  assert.is(map('/auth/', '/auth', ''), '/');
  assert.is(map('/auth?x=1', '/auth', ''), '/?x=1');
  assert.is(map('/api', '/api', '/api/v1'), '/api/v1');
  assert.is(map('/api/', '/api', '/api/v1'), '/api/v1/');
});

test('paths outside the mount are ERR_NOT_MOUNTED, including a shared name prefix', () => {
  assert.is(codeOf(() => map('/authx/login', '/auth')), 'ERR_NOT_MOUNTED');
  assert.is(codeOf(() => map('/other', '/auth')), 'ERR_NOT_MOUNTED');
  assert.is(codeOf(() => map('/', '/auth')), 'ERR_NOT_MOUNTED');
});

test('the query is forwarded byte for byte, and a lone "?" is dropped', () => {
  const query = '?b=2&a=1&a=%20x+y&empty=&flag&utf=%E2%9C%93&semi=a;b&q=%2e%2e%2f';
  assert.is(map(`/auth/search${query}`, '/auth', '/v1'), `/v1/search${query}`);
  assert.is(map('/auth/x?', '/auth'), '/x');
  assert.is(map('/auth/x', '/auth'), '/x');
});

test('percent-encoding in the path is preserved as sent', () => {
  assert.is(map('/files/a%20b/%E2%9C%93/a%2Fb', '', ''), '/files/a%20b/%E2%9C%93/a%2Fb');
  assert.is(map('/files/A%2fb', '', '/p'), '/p/files/A%2fb');
});

test('dot segments are refused in raw, encoded, double-encoded, backslash, ;-param and overlong forms', () => {
  const hostile = [
    '/a/../b',
    '/..',
    '/a/.',
    '/./a',
    '/a/%2e%2e/b',
    '/a/%2E%2E/b',
    '/a/.%2e/b',
    '/a/..%2fb',
    '/a/..%2Fb',
    '/a/%2e%2e%2fb',
    '/a/..%5cb',
    '/a/..\\b',
    '/a\\..\\b',
    '/a/%252e%252e/b',
    '/a/%25252e%25252e/b',
    '/a/..;/b',
    '/a/%c0%ae%c0%ae/b',
    '/a/%c0%af',
    '/a/%e0%80%ae',
    '/a%00b',
  ];
  for (const path of hostile) {
    assert.is(codeOf(() => map(path, '', '/api')), 'ERR_BAD_PATH', path);
    assert.is(codeOf(() => map(`/auth${path}`, '/auth', '/api')), 'ERR_BAD_PATH', `/auth${path}`);
  }
});

test('paths that could name another origin are refused', () => {
  for (const path of ['//evil.example/x', '/auth//evil.example/x', '/auth/%2fevil.example', '/auth/%5cevil.example', '/auth/\\evil']) {
    const mount = path.startsWith('/auth') ? '/auth' : '';
    assert.is(codeOf(() => map(path, mount, '')), 'ERR_BAD_PATH', path);
  }
});

test('ordinary paths with dots, percent signs and semicolons pass', () => {
  for (const path of ['/static/app.js', '/a/.well-known/x', '/a/..b', '/a/b..', '/v1.2/x', '/a/%41%42', '/a;b=c/d', '/a/...']) {
    assert.is(codeOf(() => assertSafePath(path)), undefined, path);
  }
});

test('absolute-form targets keep only their path', () => {
  assert.equal(splitAbsoluteForm('http://evil.example:81/auth/x?y=1'), { authority: 'evil.example:81', pathAndQuery: '/auth/x?y=1' });
  assert.equal(splitAbsoluteForm('HTTPS://h?q'), { authority: 'h', pathAndQuery: '/?q' });
  assert.is(codeOf(() => splitAbsoluteForm('*')), 'ERR_BAD_PATH');
  assert.is(codeOf(() => splitAbsoluteForm('ftp://h/x')), 'ERR_BAD_PATH');
});

test('path options are normalised and bad ones named', () => {
  assert.is(normalizePathOption('/api/v1/', 'upstreamPrefix'), '/api/v1');
  assert.is(normalizePathOption('/', 'upstreamPrefix'), '');
  assert.is(normalizePathOption(undefined, 'mountPath'), '');
  assert.throws(() => normalizePathOption('api', 'mountPath'), (e: Error) => e instanceof TypeError && e.message.includes('mountPath'));
  assert.throws(() => normalizePathOption('/a/../b', 'upstreamPrefix'), (e: Error) => e instanceof TypeError && e.message.includes('upstreamPrefix'));
  assert.throws(() => normalizePathOption('/a?x', 'mountPath'), /mountPath/);
});

test('normalizePathOption: non-ASCII is percent-encoded as UTF-8, as clients send it; ASCII and escapes stay as written', () => {
  assert.is(normalizePathOption('/café/', 'mountPath'), '/caf%C3%A9');
  assert.is(normalizePathOption('/caf%C3%A9', 'mountPath'), '/caf%C3%A9', 'already encoded: unchanged, not encoded twice');
  assert.is(normalizePathOption('/日本/%7Ev1', 'upstreamPrefix'), '/%E6%97%A5%E6%9C%AC/%7Ev1', 'other escapes are left as written');
  assert.is(normalizePathOption("/a-b_c~d!$&'()*+,;=:@", 'mountPath'), "/a-b_c~d!$&'()*+,;=:@");
  assert.is(normalizePathOption('/\u{1F600}x', 'mountPath'), '/%F0%9F%98%80x', 'a code point beyond the BMP is one character');
  assert.is(normalizePathOption('/a\ud800', 'mountPath'), '/a%EF%BF%BD', 'a lone surrogate (no UTF-8 form) is U+FFFD, as WHATWG URL writes it');
  assert.throws(() => normalizePathOption('/caf\u00a0', 'mountPath'), /mountPath/, 'a non-ASCII space is still refused');
});

test.run();
