// rewriteLocation(): unit tests with a fake `next`, then a 302 through a real relay.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { ClientInfo, createRelay, stageContext, type Handler, type HeaderRecord, type ProxyRequest } from '@relay/core';
import { rewriteLocation, type RewriteLocationOptions } from '../src/index.js';

/** The Target a relay would give its stages (no socket is opened before startup()). */
function targetOf(targetBaseUrl: string, upstreamPrefix?: string) {
  return createRelay({ targetBaseUrl, upstreamPrefix }).target;
}

function request(host = 'gw.example', mountPath = '/auth', scheme: 'http' | 'https' = 'https'): ProxyRequest {
  return {
    method: 'GET',
    path: '/x',
    headers: {},
    body: null,
    replayBody: null,
    attempt: 1,
    client: new ClientInfo({ address: '203.0.113.7', scheme, host, mountPath, originalUrl: `${mountPath}/x` }),
  };
}

/** Runs one response with `headers` and `status` through the stage and returns its headers. */
async function rewrite(
  responseHeaders: HeaderRecord,
  options: RewriteLocationOptions = {},
  target = targetOf('http://auth.internal:8000', '/api/v1'),
  client = request(),
  status = 302,
): Promise<HeaderRecord> {
  const next: Handler = async () => ({ status, statusMessage: '', headers: { ...responseHeaders }, body: null });
  const handler = rewriteLocation(options).wrap(next, stageContext({ target }));
  return (await handler(client)).headers;
}

test('a Location on the upstream origin and prefix becomes the public origin and mount path, for 201, 301, 302, 303, 307 and 308', async () => {
  for (const status of [201, 301, 302, 303, 307, 308]) {
    const headers = await rewrite({ location: 'http://auth.internal:8000/api/v1/dashboard?tab=1&x=%2F#top' }, {}, undefined, undefined, status);
    assert.is(headers.location, 'https://gw.example/auth/dashboard?tab=1&x=%2F#top', String(status));
  }
});

test('Content-Location is rewritten the same way', async () => {
  const headers = await rewrite({ 'content-location': 'http://auth.internal:8000/api/v1/items/7' }, {}, undefined, undefined, 201);
  assert.is(headers['content-location'], 'https://gw.example/auth/items/7');
});

test('the upstream prefix itself maps to the mount path; the host compares case-insensitively', async () => {
  assert.is((await rewrite({ location: 'HTTP://Auth.Internal:8000/api/v1' })).location, 'https://gw.example/auth');
  assert.is((await rewrite({ location: 'http://auth.internal:8000/api/v1?next=1' })).location, 'https://gw.example/auth?next=1');
  const unmounted = await rewrite({ location: 'http://auth.internal:8000/api/v1' }, {}, undefined, request('gw.example', ''));
  assert.is(unmounted.location, 'https://gw.example/');
});

test('a default port matches with or without being written', async () => {
  const target = targetOf('http://auth.internal', '/');
  assert.is((await rewrite({ location: 'http://auth.internal:80/login' }, {}, target)).location, 'https://gw.example/auth/login');
  assert.is((await rewrite({ location: 'http://auth.internal/login' }, {}, target)).location, 'https://gw.example/auth/login');
  const v6 = targetOf('http://[::1]:8000');
  assert.is((await rewrite({ location: 'http://[::1]:8000/login' }, {}, v6)).location, 'https://gw.example/auth/login');
});

test('path-absolute locations get the mount path; relative paths are left to the client', async () => {
  assert.is((await rewrite({ location: '/api/v1/login?x=1' })).location, '/auth/login?x=1');
  assert.is((await rewrite({ location: 'login' })).location, 'login');
  assert.is((await rewrite({ location: '../login' })).location, '../login');
  const root = targetOf('http://auth.internal:8000');
  assert.is((await rewrite({ location: '/login' }, {}, root)).location, '/auth/login');
  assert.is((await rewrite({ location: '/login' }, { relative: false }, root)).location, '/login', 'relative: false leaves them alone');
});

test('other origins, another scheme or port, credentials and paths outside the prefix are left alone', async () => {
  const untouched = [
    'https://accounts.example.com/authorize?client=1',
    'https://auth.internal:8000/api/v1/login',
    'http://auth.internal:8001/api/v1/login',
    'http://user@auth.internal:8000/api/v1/login',
    'http://auth.internal:8000/api/v2/login',
    'http://auth.internal:8000/api/v1x',
    '/api/v2/login',
    '//accounts.example.com/x',
    'mailto:ops@example.com',
  ];
  for (const location of untouched) {
    assert.is((await rewrite({ location })).location, location, location);
  }
});

test('a scheme-relative location on the upstream is rewritten', async () => {
  assert.is((await rewrite({ location: '//auth.internal:8000/api/v1/x' })).location, 'https://gw.example/auth/x');
});

test('publicOrigin fixes the origin; without a usable Host the location becomes a path', async () => {
  const fixed = await rewrite({ location: 'http://auth.internal:8000/api/v1/x' }, { publicOrigin: 'https://api.example.com/' });
  assert.is(fixed.location, 'https://api.example.com/auth/x');
  for (const host of ['', 'evil.example/x?', 'a b', 'evil@x']) {
    const headers = await rewrite({ location: 'http://auth.internal:8000/api/v1/x' }, {}, undefined, request(host));
    assert.is(headers.location, '/auth/x', JSON.stringify(host));
  }
});

test('a rewrite never produces a network-path reference (//host) that would send the client elsewhere', async () => {
  const root = targetOf('http://auth.internal:8000', '/api');
  const client = request('', '');
  assert.is((await rewrite({ location: '/api//evil.example/x' }, {}, root, client)).location, '/api//evil.example/x');
  assert.is((await rewrite({ location: 'http://auth.internal:8000/api//evil.example' }, {}, root, client)).location, 'http://auth.internal:8000/api//evil.example');
  assert.is((await rewrite({ location: '/api/%2F/evil' }, {}, root, client)).location, '/%2F/evil', 'encoded slashes are only a path');
});

test('options are checked when the stage is built', () => {
  assert.throws(() => rewriteLocation({ publicOrigin: 'example.com' }), /publicOrigin must be an absolute URL/);
  assert.throws(() => rewriteLocation({ publicOrigin: 'https://example.com/app' }), /publicOrigin must be an http\(s\) origin/);
  assert.throws(() => rewriteLocation({ publicOrigin: 'ftp://example.com' }), /publicOrigin/);
  assert.throws(() => rewriteLocation({ relative: 'yes' as unknown as boolean }), /relative must be a boolean/);
  assert.throws(() => rewriteLocation({ origin: 'x' } as unknown as RewriteLocationOptions), /unknown option "origin"/);
});

test('recipe, end to end: a 302 from the upstream reaches the client pointing at the public URL', async () => {
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/api/v1/login') {
      res.writeHead(302, { Location: `http://127.0.0.1:${upstream.port}/api/v1/dashboard?tab=1`, 'Content-Length': '0' });
      res.end();
      return;
    }
    res.writeHead(201, { 'Content-Location': `http://127.0.0.1:${upstream.port}/api/v1/items/9`, Location: '/api/v1/items/9' });
    res.end('created');
  });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, mountPath: '/auth', upstreamPrefix: '/api/v1', stages: [rewriteLocation()] }),
  );
  const redirect = await fetchRaw(`${served.url}/auth/login`);
  assert.is(redirect.status, 302);
  assert.is(redirect.headers.location, `${served.url}/auth/dashboard?tab=1`);
  const raw = await sendRaw(served.port, 'POST /auth/items HTTP/1.1\r\nHost: gw.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.ok(raw.startsWith('HTTP/1.1 201 '), raw.split('\r\n')[0]);
  assert.ok(raw.includes('\r\ncontent-location: http://gw.example/auth/items/9\r\n'), raw);
  assert.ok(raw.includes('\r\nlocation: /auth/items/9\r\n'), raw);
  assert.not.ok(raw.includes(String(upstream.port)), 'the upstream address never reaches the client');
  await served.close();
  await upstream.close();
});

test.run();
