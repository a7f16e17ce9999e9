// setCookieRewriter() and cookies() are one implementation: one table of cases, run both ways.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger } from '@relay/testkit';
import { ClientInfo, RelayError, stageContext, type HeaderRecord, type ProxyRequest } from '@relay/core';
import { cookies, setCookieRewriter, type CookiesOptions } from '../src/index.js';

const request: ProxyRequest = {
  method: 'GET',
  path: '/login',
  headers: {},
  body: null,
  replayBody: null,
  attempt: 1,
  client: new ClientInfo({ address: '203.0.113.7', scheme: 'https', host: 'gw.example', mountPath: '/auth', originalUrl: '/auth/login' }),
};

interface Case {
  name: string;
  options: CookiesOptions;
  lines: string[];
  expected: string[];
}

const session = 'sid="a b,c=="; Domain = auth.internal ;Path=/api; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Priority=High; HttpOnly';
const cases: Case[] = [
  { name: 'no options: unchanged', options: {}, lines: [session], expected: [session] },
  {
    name: 'Domain removed, every other byte kept',
    options: { rewriteDomain: () => '' },
    lines: [session, 'b=2'],
    expected: ['sid="a b,c==";Path=/api; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Priority=High; HttpOnly', 'b=2'],
  },
  {
    name: 'Domain map with "*", host-only cookies stay host-only',
    options: { rewriteDomain: { 'auth.internal': 'example.com', '*': '' } },
    lines: ['a=1; Domain=.Auth.Internal', 'b=2; Domain=other.internal', 'c=3'],
    expected: ['a=1; Domain=example.com', 'b=2', 'c=3'],
  },
  {
    name: 'Path map and a function of the cookie name',
    options: { rewritePath: { '/api': '/auth' }, rewriteDomain: (_value, name) => (name === 'keep' ? null : 'example.com') },
    lines: ['keep=1; Path=/api; Domain=auth.internal', 'x=2; Path=/other'],
    expected: ['keep=1; Path=/auth; Domain=auth.internal', 'x=2; Path=/other; Domain=example.com'],
  },
  {
    name: 'Secure stripped, SameSite set',
    options: { secure: false, sameSite: 'lax' },
    lines: ['a=1; Secure; SameSite=None', 'b=2'],
    expected: ['a=1; SameSite=Lax', 'b=2; SameSite=Lax'],
  },
  { name: 'Secure added where missing', options: { secure: true }, lines: ['a=1; Secure', 'b=2;'], expected: ['a=1; Secure', 'b=2; Secure;'] },
  {
    name: 'an unparsable cookie passes unchanged',
    options: { rewriteDomain: () => '' },
    lines: ['bad\u0001name=1; Domain=auth.internal', 'ok=1; Domain=auth.internal'],
    expected: ['bad\u0001name=1; Domain=auth.internal', 'ok=1'],
  },
];

async function throughStage(options: CookiesOptions, lines: string[]): Promise<string[]> {
  const stage = cookies(options).wrap(async () => ({ status: 200, statusMessage: '', headers: { 'set-cookie': lines.slice() } as HeaderRecord, body: null }), stageContext());
  return (await stage(request)).headers['set-cookie']!;
}

for (const { name, options, lines, expected } of cases) {
  test(`same result both ways: ${name}`, async () => {
    const rewrite = setCookieRewriter(options);
    const fromStage = await throughStage(options, lines);
    const plain = rewrite(lines);
    assert.equal(fromStage, expected, 'stage');
    assert.equal(plain, expected, 'plain list');
    assert.equal(lines.map((line) => rewrite(line)), expected, 'plain, one value at a time');
  });
}

test('the input is never modified; an unchanged list is returned as it is; undefined passes through', () => {
  const lines = ['a=1; Domain=auth.internal', 'b=2'];
  const rewrite = setCookieRewriter({ rewriteDomain: () => '' });
  assert.equal(rewrite(lines), ['a=1', 'b=2']);
  assert.equal(lines, ['a=1; Domain=auth.internal', 'b=2']);
  const untouched = ['b=2'];
  assert.is(rewrite(untouched), untouched);
  assert.is(rewrite(undefined), undefined);
});

test('a failing function rule throws the same RelayError both ways', async () => {
  const options: CookiesOptions = {
    rewriteDomain: () => {
      throw new Error('lookup failed');
    },
  };
  const fromStage = await throughStage(options, ['a=1; Domain=x.internal']).catch((error: unknown) => error);
  let plain: unknown;
  try {
    setCookieRewriter(options)('a=1; Domain=x.internal');
  } catch (error) {
    plain = error;
  }
  for (const error of [fromStage, plain]) {
    assert.instance(error, RelayError);
    assert.is((error as RelayError).code, 'ERR_INTERNAL');
    assert.match((error as RelayError).message, 'rewriteDomain failed for cookie "a": lookup failed');
  }
});

test('options are checked as cookies() checks them; logger is the one extra key', () => {
  assert.throws(() => setCookieRewriter({ sameSite: 'none', secure: false }), /SameSite=None requires Secure/);
  assert.throws(() => setCookieRewriter({ rewritePath: { '/': 'no-slash' } }), /rewritePath\["\/"\]/);
  assert.throws(() => setCookieRewriter({ domain: 'x' } as CookiesOptions), /unknown option "domain" \(expected one of rewriteDomain, rewritePath, secure, sameSite, logger\)/);
  assert.throws(() => cookies({ logger: memoryLogger() } as CookiesOptions), /unknown option "logger"/);
  assert.throws(() => setCookieRewriter({ logger: {} as never }), /logger must be a pino-style logger/);
});

test('an unparsable cookie is logged at warn without its value', () => {
  const logger = memoryLogger();
  setCookieRewriter({ rewriteDomain: () => '', logger })(['ok=1', 'secret\u0001token=abc']);
  const warning = logger.lines.find((line) => line.level === 'warn');
  assert.ok(warning, 'a warn line');
  assert.equal(warning!.fields, { stage: 'cookies', index: 1 });
  assert.not.match(JSON.stringify(logger.lines), 'abc');
});

test.run();
