// when() and routes() in a real relay in front of a real upstream, with a real client:
// conditions by method, host wildcard, header and path glob; several routes in one relay.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream, type FetchOptions, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay, type Stage } from '@relay/core';
import { globToRegExp, rewritePath, routes, when, type Conditions } from '../src/index.js';

let upstream: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

/** A stage that marks the request it runs for, so the upstream shows whether it ran. */
function mark(value: string): Stage {
  return {
    name: 'mark',
    wrap: (next) =>
      function markStage(request) {
        request.headers['x-mark'] = value;
        return next(request);
      },
  };
}

async function front(stages: Stage[]): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: `${upstream.url}/base`, stages }));
  fronts.push(served);
  return served;
}

interface Seen {
  url: string;
  headers: Record<string, string>;
}

async function seen(served: RelayServer<Relay>, path: string, options: FetchOptions = {}): Promise<Seen> {
  const response = await fetchRaw(served.url + path, options);
  assert.is(response.status, 200, response.text);
  return JSON.parse(response.text) as Seen;
}

async function marked(served: RelayServer<Relay>, path: string, options: FetchOptions = {}): Promise<string | undefined> {
  return (await seen(served, path, options)).headers['x-mark'];
}

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await Promise.all(fronts.map((served) => served.close()));
  await upstream.close();
});

test('when({ method }) runs the stage only for those methods', async () => {
  const served = await front([when({ method: ['post', 'PUT'] }, mark('write'))]);
  assert.is(await marked(served, '/x', { method: 'POST', body: 'a' }), 'write');
  assert.is(await marked(served, '/x', { method: 'PUT', body: 'a' }), 'write');
  assert.is(await marked(served, '/x'), undefined);
});

test('when({ host }) matches exact names and leading wildcards, without port or case', async () => {
  const served = await front([when({ host: ['*.example.com', 'api.test'] }, mark('host'))]);
  assert.is(await marked(served, '/', { headers: { host: 'a.example.com' } }), 'host');
  assert.is(await marked(served, '/', { headers: { host: 'A.B.Example.COM:8443' } }), 'host');
  assert.is(await marked(served, '/', { headers: { host: 'api.test.' } }), 'host');
  assert.is(await marked(served, '/', { headers: { host: 'example.com' } }), undefined, 'the wildcard needs a label');
  assert.is(await marked(served, '/', { headers: { host: 'evil-example.com' } }), undefined);
  assert.is(await marked(served, '/', { headers: { host: 'example.com.evil' } }), undefined);
});

test('when({ host }): a pattern is normalised as the client’s Host (trailing dot, case); one that could never match is refused when built', async () => {
  const served = await front([when({ host: ['API.example.com.', '*.Wild.example.', '[::1]'] }, mark('host'))]);
  assert.is(await marked(served, '/', { headers: { host: 'api.example.com:8080' } }), 'host');
  assert.is(await marked(served, '/', { headers: { host: 'a.wild.example.' } }), 'host');
  assert.is(await marked(served, '/', { headers: { host: '[::1]:8080' } }), 'host');
  assert.is(await marked(served, '/', { headers: { host: 'wild.example' } }), undefined);
  assert.throws(() => when({ host: 'api.example.com:8080' }, mark('x')), /^when: host "api\.example\.com:8080": a port is not matched/);
  assert.throws(() => routes([{ when: { host: ['a.test', '[::1]:443'] }, stages: [] }]), /routes\[0\]\.when: host "\[::1\]:443": a port is not matched/);
  assert.throws(() => when({ host: '::1' }, mark('x')), /IPv6 address in brackets/);
  for (const bad of ['a b', 'a/b', 'a..b', '.', 'http://a.test', 'bücher.example']) {
    assert.throws(() => when({ host: bad }, mark('x')), /is not a host name|a port is not matched/, bad);
  }
});

test('when({ header }) matches a value, a RegExp, presence and absence', async () => {
  const value = await front([when({ header: { 'X-Tenant': 'acme' } }, mark('acme'))]);
  assert.is(await marked(value, '/', { headers: { 'x-tenant': 'acme' } }), 'acme');
  assert.is(await marked(value, '/', { headers: { 'x-tenant': 'acme2' } }), undefined);
  const regex = await front([when({ header: { accept: /json/, 'x-debug': false, authorization: true } }, mark('json'))]);
  assert.is(await marked(regex, '/', { headers: { accept: 'application/json', authorization: 'Bearer t' } }), 'json');
  assert.is(await marked(regex, '/', { headers: { accept: 'application/json' } }), undefined, 'authorization absent');
  assert.is(await marked(regex, '/', { headers: { accept: 'application/json', authorization: 'Bearer t', 'x-debug': '1' } }), undefined);
});

test('when({ path }) matches globs under the target base, query ignored', async () => {
  const served = await front([when({ path: '/api/*/items/**' }, mark('items'))]);
  assert.is(await marked(served, '/api/v1/items'), 'items');
  assert.is(await marked(served, '/api/v1/items/7/parts?x=/y'), 'items');
  assert.is(await marked(served, '/api/v1/v2/items/7'), undefined, '* stays in one segment');
  assert.is(await marked(served, '/api/v1/itemsx'), undefined);
  assert.ok(globToRegExp('/a/**/b').test('/a/b'));
  assert.ok(globToRegExp('/a/**/b').test('/a/x/y/b'));
  assert.ok(globToRegExp('/f?le.txt').test('/file.txt'));
  assert.not.ok(globToRegExp('/f?le.txt').test('/f/le.txt'));
});

test('when({ path }) matches the normalised path, and globs are normalised alike (RFC 3986 6.2.2)', async () => {
  const served = await front([when({ path: ['/admin/**', '/%7Euser/**', '/caf%c3%a9'] }, mark('hit'))]);
  assert.is(await marked(served, '/%61dmin/x'), 'hit', 'an escaped unreserved letter is the letter');
  assert.is(await marked(served, '/%41dmin/x'), undefined, 'case still counts once decoded');
  assert.is(await marked(served, '/~user/a'), 'hit', 'a glob written with %7E matches ~');
  assert.is(await marked(served, '/%7euser/a'), 'hit');
  assert.is(await marked(served, '/caf%C3%A9?q=%c3'), 'hit', 'hex case does not count');
  assert.is(await marked(served, '/caf%c3%a9'), 'hit');
  assert.is(await marked(served, '/admin%2Fx'), undefined, 'a reserved escape stays encoded: no new segment');
  // The relay forwards the client's bytes: conditions decide on the normal form, they do not rewrite.
  assert.is((await seen(served, '/%61dmin/x')).url, '/base/%61dmin/x');
});

test('conditions combine with AND', async () => {
  const served = await front([when({ method: 'GET', path: '/admin/**', header: { 'x-role': 'admin' } }, mark('admin'))]);
  assert.is(await marked(served, '/admin/x', { headers: { 'x-role': 'admin' } }), 'admin');
  assert.is(await marked(served, '/admin/x'), undefined);
  assert.is(await marked(served, '/other', { headers: { 'x-role': 'admin' } }), undefined);
});

test('routes(): the first matching route runs its stages; no match is 404; a route without when catches the rest', async () => {
  const strict = await front([
    routes([
      { when: { path: '/api/v1/**' }, stages: [rewritePath({ '/api/v1': '/v1' }), mark('v1')] },
      { when: { path: '/api/**', method: 'GET' }, stages: [mark('api')] },
    ]),
  ]);
  const v1 = await seen(strict, '/api/v1/users?id=1');
  assert.is(v1.url, '/base/v1/users?id=1');
  assert.is(v1.headers['x-mark'], 'v1');
  assert.is(await marked(strict, '/api/v2/users'), 'api');
  const before = upstream.requests.length;
  const missing = await fetchRaw(`${strict.url}/elsewhere`);
  assert.is(missing.status, 404);
  assert.is(upstream.requests.length, before);
  const withDefault = await front([routes([{ when: { host: '*.admin.test' }, stages: [mark('admin')] }, { stages: [] }])]);
  assert.is(await marked(withDefault, '/x', { headers: { host: 'eu.admin.test' } }), 'admin');
  assert.is(await marked(withDefault, '/x'), undefined);
});

test('options are checked at startup, unknown keys named with the nearest valid one', () => {
  assert.throws(() => when({ methd: 'GET' } as Conditions, mark('x')), /unknown option "methd" \(did you mean "method"\?/);
  assert.throws(() => when({ method: [] }, mark('x')), /method must be a non-empty/);
  assert.throws(() => when({ host: 'a.*.com' }, mark('x')), /leading "\*\." label/);
  assert.throws(() => when({ path: 'api/**' }, mark('x')), /must start with "\/"/);
  assert.throws(() => when({ header: { a: 1 as unknown as string } }, mark('x')), /header\["a"\] must be/);
  assert.throws(() => when({}, {} as Stage), /stage must be a stage/);
  assert.throws(() => routes([{ when: {}, stage: [] } as never]), /routes\[0\]: unknown option "stage" \(did you mean "stages"\?/);
  assert.throws(() => routes([{ stages: [null as unknown as Stage] }]), /routes\[0\].stages\[0\] must be a stage/);
  assert.throws(() => routes([]), /non-empty array/);
});

test.run();
