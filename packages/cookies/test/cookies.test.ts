// Unit tests of cookies(): a fake `next`, stageContext(), no sockets.
import { PassThrough } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger } from '@relay/testkit';
import { ClientInfo, RelayError, stageContext, type Handler, type HeaderRecord, type ProxyRequest, type ProxyResponse, type StageContext } from '@relay/core';
import { cookies, type CookiesOptions } from '../src/index.js';

const request: ProxyRequest = {
  method: 'GET',
  path: '/login',
  headers: {},
  body: null,
  replayBody: null,
  attempt: 1,
  client: new ClientInfo({ address: '203.0.113.7', scheme: 'https', host: 'gw.example', mountPath: '/auth', originalUrl: '/auth/login' }),
};

async function run(
  setCookie: string[] | string,
  options: CookiesOptions,
  extra: { status?: number; body?: ProxyResponse['body']; context?: StageContext } = {},
): Promise<ProxyResponse> {
  const next: Handler = async () => ({
    status: extra.status ?? 200,
    statusMessage: '',
    headers: { 'set-cookie': setCookie, 'content-type': 'text/plain' } as HeaderRecord,
    body: extra.body ?? null,
  });
  return cookies(options).wrap(next, extra.context ?? stageContext())(request);
}

async function rewriteAll(lines: string[], options: CookiesOptions): Promise<string[]> {
  return (await run(lines, options)).headers['set-cookie']!;
}

test('only the attribute asked for changes: quoted values, spacing, Expires commas and unknown attributes survive byte for byte', async () => {
  const original = 'sid="a b,c=="; Domain = auth.internal ;Path=/api; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Priority=High; Partitioned; HttpOnly';
  const [rewritten] = await rewriteAll([original], { rewriteDomain: () => 'example.com' });
  assert.is(rewritten, 'sid="a b,c=="; Domain = example.com ;Path=/api; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Priority=High; Partitioned; HttpOnly');
  const [removed] = await rewriteAll([original], { rewriteDomain: () => '' });
  assert.is(removed, 'sid="a b,c==";Path=/api; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Priority=High; Partitioned; HttpOnly');
});

test('every Set-Cookie stays its own header, in order; unchanged ones are the same strings', async () => {
  const lines = ['a=1; Domain=auth.internal', 'b=2', 'c=3; Domain=other.internal; Secure', 'd=4; Max-Age=0'];
  const result = await rewriteAll(lines, { rewriteDomain: { 'auth.internal': 'example.com' } });
  assert.equal(result, ['a=1; Domain=example.com', 'b=2', 'c=3; Domain=other.internal; Secure', 'd=4; Max-Age=0']);
  assert.equal(lines, ['a=1; Domain=auth.internal', 'b=2', 'c=3; Domain=other.internal; Secure', 'd=4; Max-Age=0'], 'input not modified');
  const same = ['x=1; Path=/'];
  assert.is(await rewriteAll(same, { rewriteDomain: () => null }), same, 'nothing changed: the same array');
});

test('rewriteDomain function: gets the original value (undefined when absent) and the cookie name; null and undefined keep', async () => {
  const calls: Array<[string | undefined, string]> = [];
  const result = await rewriteAll(['a=1; Domain=.Auth.Internal', 'b=2; Path=/', 'c=3; Domain=keep.internal', 'd=4; Domain=; Domain=last.internal'], {
    rewriteDomain: (domain, name) => {
      calls.push([domain, name]);
      if (name === 'b') return 'example.com';
      if (name === 'c') return null;
      return undefined;
    },
  });
  assert.equal(calls, [
    ['.Auth.Internal', 'a'],
    [undefined, 'b'],
    ['keep.internal', 'c'],
    ['last.internal', 'd'],
  ]);
  assert.equal(result, ['a=1; Domain=.Auth.Internal', 'b=2; Path=/; Domain=example.com', 'c=3; Domain=keep.internal', 'd=4; Domain=; Domain=last.internal']);
});

test('rewriteDomain map: keys compare without case or leading dot; "*" covers other cookies that have a Domain only', async () => {
  const result = await rewriteAll(['a=1; domain=.AUTH.internal; Path=/', 'b=2; Domain=metrics.internal', 'c=3; Path=/'], {
    rewriteDomain: { 'Auth.Internal': 'example.com', '*': '' },
  });
  assert.equal(result, ['a=1; domain=example.com; Path=/', 'b=2', 'c=3; Path=/']);
});

test('several Domain attributes: a new value replaces the last, the others go', async () => {
  const [result] = await rewriteAll(['a=1; Domain=one.internal; HttpOnly; Domain=two.internal'], { rewriteDomain: () => 'example.com' });
  assert.is(result, 'a=1; HttpOnly; Domain=example.com');
});

test('rewritePath: a map of exact paths and a function', async () => {
  const mapped = await rewriteAll(['a=1; Path=/api/v1; HttpOnly', 'b=2; Path=/other', 'c=3'], { rewritePath: { '/api/v1': '/auth' } });
  assert.equal(mapped, ['a=1; Path=/auth; HttpOnly', 'b=2; Path=/other', 'c=3']);
  const computed = await rewriteAll(['a=1; path=/api/v1/x', 'b=2'], {
    rewritePath: (path) => (path === undefined ? '/auth' : path.replace(/^\/api\/v1/, '/auth')),
  });
  assert.equal(computed, ['a=1; path=/auth/x', 'b=2; Path=/auth']);
});

test('secure: false strips every Secure flag in any spelling; true adds one where missing', async () => {
  const lines = ['a=1; Secure; Path=/', 'b=2; secure=yes; HttpOnly; SECURE', 'c=3; Path=/;'];
  assert.equal(await rewriteAll(lines, { secure: false }), ['a=1; Path=/', 'b=2; HttpOnly', 'c=3; Path=/;']);
  assert.equal(await rewriteAll(lines, { secure: true }), ['a=1; Secure; Path=/', 'b=2; secure=yes; HttpOnly; SECURE', 'c=3; Path=/; Secure;']);
});

test('sameSite overrides the attribute or adds it', async () => {
  const result = await rewriteAll(['a=1; SameSite=None; Secure', 'b=2; samesite = strict ; Path=/', 'c=3'], { sameSite: 'lax' });
  assert.equal(result, ['a=1; SameSite=Lax; Secure', 'b=2; samesite = Lax ; Path=/', 'c=3; SameSite=Lax']);
});

test('a cookie tough-cookie cannot parse is passed on unchanged, with a warning that does not show it', async () => {
  const logger = memoryLogger();
  const broken = 'sid=se\x01cret; Domain=auth.internal';
  const response = await run([broken, 'ok=1; Domain=auth.internal'], { rewriteDomain: () => '' }, { context: stageContext({ logger }) });
  assert.equal(response.headers['set-cookie'], [broken, 'ok=1']);
  assert.is(logger.lines.length, 1);
  assert.is(logger.lines[0]!.level, 'warn');
  assert.not.ok(JSON.stringify(logger.lines[0]).includes('cret'));
});

test('a function returning an invalid value fails with ERR_INTERNAL and releases the upstream body', async () => {
  for (const rewriteDomain of [() => 'example.com; Path=/', () => 'evil\r\nx: 1', () => 42 as unknown as string]) {
    const body = new PassThrough();
    const error = (await run(['a=1; Domain=auth.internal'], { rewriteDomain }, { body }).catch((reason: unknown) => reason)) as RelayError;
    assert.instance(error, RelayError);
    assert.is(error.code, 'ERR_INTERNAL');
    assert.match(error.message, /rewriteDomain returned an invalid value for cookie "a"/);
    assert.ok(body.destroyed);
  }
  const boom = new Error('lookup failed');
  const thrown = (await run(['a=1'], {
    rewritePath: () => {
      throw boom;
    },
  }).catch((reason: unknown) => reason)) as RelayError;
  assert.is(thrown.code, 'ERR_INTERNAL');
  assert.is(thrown.cause, boom);
});

test('WebSocket handshake responses (101, no body) are rewritten too; a lone string set-cookie becomes an array', async () => {
  const response = await run('a=1; Domain=auth.internal', { rewriteDomain: () => '' }, { status: 101 });
  assert.equal(response.headers['set-cookie'], ['a=1']);
  const untouched = await run([], { rewriteDomain: () => '' });
  assert.equal(untouched.headers['set-cookie'], []);
});

test('options are checked when the stage is built, naming the option', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ rewriteDomain: 'example.com' }, /rewriteDomain must be a function or an object/],
    [{ rewriteDomain: { 'auth.internal': 'bad domain' } }, /rewriteDomain\["auth.internal"\] must be ""/],
    [{ rewriteDomain: { 'not a domain': '' } }, /rewriteDomain key "not a domain"/],
    [{ rewritePath: { '/': 'relative' } }, /rewritePath\["\/"\] must be "" \(remove\) or a path starting with "\/"/],
    [{ rewritePath: { '/': '/a;b' } }, /rewritePath/],
    [{ secure: 'no' }, /secure must be a boolean/],
    [{ sameSite: 'sometimes' }, /sameSite must be "Strict", "Lax" or "None"/],
    [{ sameSite: 'none', secure: false }, /SameSite=None requires Secure/],
    [{ rewriteDomains: () => '' }, /unknown option "rewriteDomains"/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => cookies(options as CookiesOptions), message, JSON.stringify(options));
  }
  assert.throws(() => cookies({ sameSite: 'sometimes' as 'lax' }), (error: Error) => error instanceof RangeError);
});

test.run();
