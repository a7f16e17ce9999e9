import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, sendRaw, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay, type RelayOptions } from '../src/index.js';

let upstream: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

async function front(options: Partial<RelayOptions> = {}): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, ...options }));
  fronts.push(served);
  return served;
}

test.before(async () => {
  upstream = await startUpstream((req, res, seen) => {
    if (req.url?.startsWith('/hop')) {
      res.setHeader('Connection', 'x-upstream-private, keep-alive');
      res.setHeader('X-Upstream-Private', 'secret');
      res.setHeader('Keep-Alive', 'timeout=5');
      res.setHeader('Proxy-Authenticate', 'Basic');
      res.setHeader('Trailer', 'x-checksum');
      res.setHeader('X-Public', 'yes');
      res.end('ok');
      return;
    }
    if (req.url?.startsWith('/cookies')) {
      res.setHeader('Set-Cookie', ['a=1; Path=/; HttpOnly', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT']);
      res.setHeader('X-Multi', ['one', 'two']);
      res.end('ok');
      return;
    }
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body: seen.body.toString() });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
});

test.after(async () => {
  await Promise.all(fronts.map((f) => f.close()));
  await upstream.close();
});

test('mount stripping: /auth/login reaches the upstream as /login, and as /api/v1/login with a prefix', async () => {
  const plain = await front({ mountPath: '/auth' });
  const prefixed = await front({ mountPath: '/auth', upstreamPrefix: '/api/v1' });
  assert.is(JSON.parse((await fetchRaw(`${plain.url}/auth/login`)).text).url, '/login');
  assert.is(JSON.parse((await fetchRaw(`${prefixed.url}/auth/login`)).text).url, '/api/v1/login');
  assert.is(JSON.parse((await fetchRaw(`${prefixed.url}/auth`)).text).url, '/api/v1');
  const outside = await fetchRaw(`${plain.url}/other/login`);
  assert.is(outside.status, 404);
});

test('the target URL path is joined before the prefix', async () => {
  const served = await front({ targetBaseUrl: `${upstream.url}/base/`, upstreamPrefix: '/v2', mountPath: '/api' });
  assert.is(JSON.parse((await fetchRaw(`${served.url}/api/users/7?x=1`)).text).url, '/base/v2/users/7?x=1');
});

test('the query string arrives byte for byte, with no trailing "?" when there is none', async () => {
  const served = await front({ mountPath: '/auth' });
  const query = '?b=2&a=1&a=%20x+y&empty=&flag&utf=%E2%9C%93&semi=a;b&enc=%2e%2e%2F&plus=+';
  const before = upstream.requests.length;
  await fetchRaw(`${served.url}/auth/search${query}`);
  await fetchRaw(`${served.url}/auth/plain`);
  await fetchRaw(`${served.url}/auth/lone?`);
  const seen = upstream.requests.slice(before).map((r) => r.url);
  assert.equal(seen, [`/search${query}`, '/plain', '/lone']);
});

test('unsafe paths get 400 and never reach the upstream', async () => {
  const served = await front({ mountPath: '/auth', upstreamPrefix: '/api' });
  const before = upstream.requests.length;
  for (const path of ['/auth/../admin', '/auth/%2e%2e/admin', '/auth/..%2fadmin', '/auth/%2e%2e%2fadmin', '/auth/a/..%5c..%5cadmin', '/auth/%252e%252e/admin', '/auth//evil.example/x']) {
    const response = await sendRaw(served.port, `GET ${path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`);
    assert.ok(response.startsWith('HTTP/1.1 400 '), `${path}: ${response.split('\r\n')[0]}`);
    assert.ok(response.includes('ERR_BAD_PATH'), path);
  }
  assert.is(upstream.requests.length, before, 'the upstream saw none of them');
});

test('absolute-form and //host targets never change the upstream origin', async () => {
  const served = await front({ mountPath: '/auth' });
  const before = upstream.requests.length;
  const absolute = await sendRaw(served.port, 'GET http://evil.example/auth/who?x=1 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.ok(absolute.startsWith('HTTP/1.1 200 '), absolute.split('\r\n')[0]);
  const seen = upstream.requests.slice(before);
  assert.is(seen.length, 1);
  assert.is(seen[0]!.url, '/who?x=1');
  assert.is(seen[0]!.headers.host, `127.0.0.1:${upstream.port}`);
  const doubleSlash = await sendRaw(served.port, 'GET //evil.example/auth/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  assert.ok(/^HTTP\/1.1 (400|404) /.test(doubleSlash), doubleSlash.split('\r\n')[0]);
  assert.is(upstream.requests.length, before + 1);
});

test('hop-by-hop and Connection-listed request headers are removed before forwarding (TE but its `trailers`, as Envoy does)', async () => {
  const served = await front();
  const raw =
    'GET /echo HTTP/1.1\r\nHost: gw.example\r\nConnection: keep-alive, X-Client-Private\r\nX-Client-Private: secret\r\n' +
    'Keep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nTE: gzip, trailers\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\n' +
    'X-Keep: yes\r\n\r\n';
  const before = upstream.requests.length;
  await sendRaw(served.port, raw, 500);
  const seen = upstream.requests[before]!;
  assert.is(seen.headers.te, 'trailers', 'only the trailers part of TE: the relay takes trailers on its own hop');
  for (const name of ['connection', 'x-client-private', 'keep-alive', 'proxy-authorization', 'upgrade', 'proxy-connection']) {
    assert.not.ok(seen.rawHeaders.some((h, i) => i % 2 === 0 && h.toLowerCase() === name && name !== 'connection'), `${name} was forwarded`);
  }
  assert.is(seen.headers['x-keep'], 'yes');
  assert.ok(seen.headers['x-client-private'] === undefined);
  assert.ok(seen.headers.connection === undefined || seen.headers.connection === 'keep-alive', 'only the transport’s own Connection');
});

test('hop-by-hop and Connection-listed response headers are removed before the client', async () => {
  const served = await front();
  const response = await fetchRaw(`${served.url}/hop`);
  assert.is(response.status, 200);
  for (const name of ['x-upstream-private', 'keep-alive', 'proxy-authenticate', 'trailer']) {
    assert.is(response.headers[name], undefined, name);
  }
  assert.is(response.headers['x-public'], 'yes');
  assert.is(response.text, 'ok');
});

test('the forwarding headers replace the client\'s (trustProxy false by default), Host set to the upstream', async () => {
  const served = await front({ mountPath: '/auth' });
  const response = await fetchRaw(`${served.url}/auth/echo`, {
    headers: { host: 'public.example:8443', 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-prefix': '/spoofed' },
  });
  const seen = JSON.parse(response.text);
  assert.is(seen.headers['x-forwarded-for'], '127.0.0.1', 'an edge gateway does not keep a client-sent X-Forwarded-For');
  assert.is(seen.headers['x-forwarded-proto'], 'http', 'the client connection is plain http');
  assert.is(seen.headers['x-forwarded-port'], String(served.port));
  assert.is(seen.headers['x-forwarded-host'], 'public.example:8443');
  assert.is(seen.headers['x-forwarded-prefix'], '/auth');
  assert.is(seen.headers.host, `127.0.0.1:${upstream.port}`);
});

test('without a mount path no client X-Forwarded-Prefix passes; preserveHost keeps the client Host', async () => {
  const served = await front({ preserveHost: true });
  const seen = JSON.parse((await fetchRaw(`${served.url}/echo`, { headers: { host: 'public.example', 'x-forwarded-prefix': '/evil' } })).text);
  assert.is(seen.headers['x-forwarded-prefix'], undefined);
  assert.is(seen.headers.host, 'public.example');
});

test('a client cannot strip forwarding headers by listing them in Connection', async () => {
  const served = await front({ mountPath: '/auth' });
  const response = await fetchRaw(`${served.url}/auth/echo`, {
    headers: { host: 'gw', connection: 'close, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Prefix, Host' },
  });
  const seen = JSON.parse(response.text);
  assert.is(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.is(seen.headers['x-forwarded-proto'], 'http');
  assert.is(seen.headers['x-forwarded-host'], 'gw');
  assert.is(seen.headers['x-forwarded-prefix'], '/auth');
  assert.is(seen.headers.host, `127.0.0.1:${upstream.port}`);
});

test('two Set-Cookie headers arrive as two, and repeated headers keep every value', async () => {
  const served = await front();
  const response = await fetchRaw(`${served.url}/cookies`);
  assert.equal(response.headers['set-cookie'], ['a=1; Path=/; HttpOnly', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT']);
  const multi = response.rawHeaders.filter((_, i, all) => i % 2 === 1 && all[i - 1]!.toLowerCase() === 'x-multi');
  assert.equal(multi, ['one', 'two']);
});

test('repeated request headers reach the upstream with every value', async () => {
  const served = await front();
  const before = upstream.requests.length;
  await sendRaw(served.port, 'GET /echo HTTP/1.1\r\nHost: gw\r\nX-Tag: a\r\nX-Tag: b\r\nConnection: close\r\n\r\n');
  const seen = upstream.requests[before]!;
  const tags = seen.rawHeaders.filter((_, i, all) => i % 2 === 1 && all[i - 1]!.toLowerCase() === 'x-tag');
  assert.equal(tags, ['a', 'b']);
});

test.run();
