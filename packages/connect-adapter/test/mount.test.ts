import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay, type RelayOptions } from '@relay/core';
import { fetchRaw, sendRaw, startUpstream, type SeenRequest, type Upstream } from '@relay/testkit';
import { toConnect } from '../src/index.js';
import { mountedRoute } from '../src/mount.js';
import { frameworks, type RunningApp } from './apps.js';

// The seed's path mapping table, through real Express 5, Connect 3 and Polka servers.

let auth: Upstream;
let billing: Upstream;
const relays: Relay[] = [];
const apps: RunningApp[] = [];

function tagged(name: string) {
  return (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => {
    const body = JSON.stringify({ upstream: name, url: req.url, headers: req.headers, body: seen.body.toString() });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  };
}

test.before(async () => {
  auth = await startUpstream(tagged('auth'));
  billing = await startUpstream(tagged('billing'));
});

test.after(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await Promise.all(relays.map((relay) => relay.shutdown()));
  await auth.close();
  await billing.close();
});

async function relayTo(upstream: Upstream, options: Partial<RelayOptions> = {}): Promise<Relay> {
  const relay = createRelay({ targetBaseUrl: upstream.url, ...options });
  await relay.startup();
  relays.push(relay);
  return relay;
}

async function json(url: string): Promise<{ status: number; body: { upstream?: string; url?: string; headers?: Record<string, string> } | string }> {
  const response = await fetchRaw(url);
  const isJson = String(response.headers['content-type']).startsWith('application/json');
  return { status: response.status, body: isJson ? JSON.parse(response.text) : response.text };
}

/** [mount, upstreamPrefix, request, upstream path] */
const table: Array<[string, string, string, string]> = [
  ['/auth', '/', '/auth/login', '/login'],
  ['/auth', '/api/v1', '/auth/login', '/api/v1/login'],
  ['/auth', '/', '/auth', '/'],
  ['/auth', '/api/v1', '/auth', '/api/v1'],
  ['/auth', '/api/v1', '/auth/', '/api/v1/'],
  ['/auth', '/', '/auth/login?next=%2Fhome&a=1&a=2', '/login?next=%2Fhome&a=1&a=2'],
  ['/auth', '/api/v1', '/auth?x=1', '/api/v1?x=1'],
  ['/auth', '/', '/auth/users/caf%C3%A9/%7Eada', '/users/caf%C3%A9/%7Eada'],
];

for (const framework of frameworks) {
  test(`${framework.name}: the seed's path mapping table (same path, different path, bare mount)`, async () => {
    const plain = await relayTo(auth);
    const prefixed = await relayTo(auth, { upstreamPrefix: '/api/v1' });
    const same = await framework.start({ mounts: [['/auth', toConnect(plain)]] });
    const different = await framework.start({ mounts: [['/auth', toConnect(prefixed)]] });
    apps.push(same, different);
    for (const [mount, prefix, request, expected] of table) {
      const app = prefix === '/' ? same : different;
      const { status, body } = await json(app.url + request);
      assert.is(status, 200, `${mount} + ${prefix}: ${request}`);
      assert.type(body, 'object');
      const seen = body as { url: string; headers: Record<string, string> };
      assert.is(seen.url, expected, `${mount} + ${prefix}: ${request}`);
      assert.is(seen.headers['x-forwarded-prefix'], '/auth', `X-Forwarded-Prefix for ${request}`);
      assert.is(seen.headers['x-forwarded-host'], `127.0.0.1:${app.port}`);
    }
  });

  if (framework.nestedMounts) {
    test(`${framework.name}: a two-segment mount path is stripped whole`, async () => {
      const app = await framework.start({ mounts: [['/api/v2', toConnect(await relayTo(auth, { upstreamPrefix: '/internal' }))]] });
      apps.push(app);
      const { body } = await json(`${app.url}/api/v2/users/7?full=1`);
      assert.is((body as { url: string }).url, '/internal/users/7?full=1');
      assert.is((body as { headers: Record<string, string> }).headers['x-forwarded-prefix'], '/api/v2');
    });
  }

  test(`${framework.name}: two relays on two mount paths each reach their own upstream`, async () => {
    const app = await framework.start({
      mounts: [
        ['/auth', toConnect(await relayTo(auth))],
        ['/billing', toConnect(await relayTo(billing, { upstreamPrefix: '/v2' }))],
      ],
    });
    apps.push(app);
    const login = (await json(`${app.url}/auth/login`)).body as { upstream: string; url: string };
    const invoices = (await json(`${app.url}/billing/invoices?page=2`)).body as { upstream: string; url: string };
    assert.equal([login.upstream, login.url], ['auth', '/login']);
    assert.equal([invoices.upstream, invoices.url], ['billing', '/v2/invoices?page=2']);
  });

  test(`${framework.name}: the app's own routes are untouched, /authors and /auth.json included`, async () => {
    const app = await framework.start({ mounts: [['/auth', toConnect(await relayTo(auth))]] });
    apps.push(app);
    const before = auth.requests.length;
    assert.equal(await json(`${app.url}/health`), { status: 200, body: 'app: healthy' });
    assert.equal(await json(`${app.url}/authors`), { status: 200, body: 'app: authors' });
    assert.equal(await json(`${app.url}/auth.json`), { status: 404, body: 'app: not found' });
    assert.equal(await json(`${app.url}/elsewhere`), { status: 404, body: 'app: not found' });
    const posted = await fetchRaw(`${app.url}/own`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    assert.is(JSON.parse(posted.text).app, 'own');
    assert.is(auth.requests.length, before, 'nothing outside /auth reached the upstream');
  });

  test(`${framework.name}: core's path checks apply to what the framework hands over (raw traversal, //host)`, async () => {
    const app = await framework.start({ mounts: [['/auth', toConnect(await relayTo(auth, { upstreamPrefix: '/public' }))]] });
    apps.push(app);
    const before = auth.requests.length;
    for (const path of ['/auth/..%2fadmin', '/auth/%2e%2e/admin', '/auth/../admin', '/auth/..;/admin', '/auth//evil.example/x', '/auth/%2F%2Fevil.example']) {
      const answer = await sendRaw(app.port, `GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
      assert.match(answer, /^HTTP\/1.1 400 /, path);
      assert.match(answer, /ERR_BAD_PATH/, path);
      assert.not.match(answer, /127\.0\.0\.1/);
    }
    assert.is(auth.requests.length, before, 'the upstream was never reached');
  });
}

test('mountedRoute: what each framework leaves in req.url, against req.originalUrl', () => {
  const cases: Array<[url: string, originalUrl: string, baseUrl: string | undefined, expected: [string, string] | null]> = [
    ['/login', '/auth/login', '/auth', ['/login', '/auth']], // Express, Connect
    ['/', '/auth', '/auth', ['', '/auth']], // bare mount: the framework added "/"
    ['/?x=1', '/auth?x=1', undefined, ['?x=1', '/auth']],
    ['?x=1', '/auth?x=1', undefined, ['?x=1', '/auth']], // Polka 0.5 adds no "/"
    ['/', '/auth/', undefined, ['/', '/auth']], // trailing slash kept
    ['/x', '/api/v2/x', undefined, ['/x', '/api/v2']],
    ['/login', '/AUTH/login', '/AUTH', ['/login', '/AUTH']], // the client's spelling
    ['/.json', '/auth.json', undefined, null], // Connect matched inside a segment
    ['/login', '/login', '', ['/login', '']], // mounted at the root
    ['/new/x', '/old/x', undefined, ['/new/x', '']], // the app rewrote req.url
    ['/new/x', '/api/old/x', '/api', ['/new/x', '/api']],
    ['http://gw/login', 'http://gw/auth/login', '/auth', ['/login', '/auth']], // absolute-form
    ['http://gw', 'http://gw/auth', '/auth', ['', '/auth']],
  ];
  for (const [url, originalUrl, baseUrl, expected] of cases) {
    const route = mountedRoute(url, originalUrl, baseUrl);
    assert.equal(route === null ? null : [route.path, route.mountPath], expected, `${originalUrl} → ${url}`);
  }
});

test.run();
