import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream, type SeenRequest } from '@relay/testkit';
import {
  allowListHeaders,
  dropHeaders,
  forwardedAndVia,
  perRequestHeaders,
  redirectsRewritten,
  serviceToService,
  tokenExchange,
  withCustomHeaders,
} from './headers.js';

/** An upstream that answers 200 with a debug header and a cookie, and records what it saw. */
async function upstreamWithExtras() {
  return startUpstream((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.setHeader('x-debug-info', 'db=10.0.0.5');
    res.setHeader('x-powered-by', 'upstream');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end('ok');
  });
}

async function through(stages: Stage[], request: { headers?: Record<string, string> } = {}) {
  const upstream = await upstreamWithExtras();
  const gateway = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages }));
  const response = await fetchRaw(`${gateway.url}/x`, { headers: request.headers ?? {} });
  await gateway.close();
  await upstream.close();
  return { response, seen: upstream.requests as SeenRequest[] };
}

test('custom headers replace whatever the client sent under the same name', async () => {
  const upstream = await startUpstream();
  const gateway = await serveRelay(withCustomHeaders(upstream.url));
  await fetchRaw(`${gateway.url}/x`, { headers: { 'x-api-key': 'forged' } });
  assert.is(upstream.requests[0]!.headers['x-api-key'], 'secret-key');
  assert.is(upstream.requests[0]!.headers['x-service'], 'main-app');
  await gateway.close();
  await upstream.close();
});

test('function values run per request', async () => {
  let issued = 0;
  const { seen } = await through([perRequestHeaders({ current: async () => `t${++issued}` })], { headers: { 'x-request-id': 'from-client' } });
  assert.is(seen[0]!.headers.authorization, 'Bearer t1');
  assert.is(seen[0]!.headers['x-request-id'], 'from-client');
  const fresh = await through([perRequestHeaders({ current: async () => 'tok' })]);
  assert.match(String(fresh.seen[0]!.headers['x-request-id']), /^[0-9a-f-]{36}$/);
});

test('drop headers both ways', async () => {
  const { response, seen } = await through([dropHeaders()], { headers: { 'x-internal-token': 'leak' } });
  assert.is(seen[0]!.headers['x-internal-token'], undefined);
  assert.is(response.headers['x-debug-info'], undefined);
  assert.is(response.headers['x-powered-by'], 'upstream');
});

test('allow lists keep routing and framing headers', async () => {
  const { response, seen } = await through([allowListHeaders()], { headers: { authorization: 'Bearer a', cookie: 'x=1', 'x-other': '1' } });
  const sent = seen[0]!.headers;
  assert.is(sent.authorization, 'Bearer a');
  assert.is(sent.cookie, undefined);
  assert.is(sent['x-other'], undefined);
  assert.ok(sent.host && sent['x-forwarded-for'], 'host and forwarding headers always kept');
  assert.equal(response.headers['set-cookie'], ['a=1', 'b=2']);
  assert.is(response.headers['x-powered-by'], undefined);
  assert.is(response.headers['content-length'], '2');
});

test("service-to-service auth: the client's credentials stay at the gateway", async () => {
  const upstream = await startUpstream();
  const gateway = await serveRelay(serviceToService(upstream.url, 'svc-token'));
  await fetchRaw(`${gateway.url}/x`, { headers: { authorization: 'Bearer user' } });
  assert.is(upstream.requests[0]!.headers.authorization, undefined);
  assert.is(upstream.requests[0]!.headers['x-service-auth'], 'svc-token');
  await gateway.close();
  await upstream.close();
});

test('token exchange reads the credential it drops', async () => {
  const { seen } = await through([tokenExchange(async (credential) => `exchanged(${credential})`)], { headers: { authorization: 'Bearer user' } });
  assert.is(seen[0]!.headers.authorization, undefined);
  assert.is(seen[0]!.headers['x-service-auth'], 'exchanged(Bearer user)');
});

test('Forwarded and Via', async () => {
  const { response, seen } = await through([forwardedAndVia()], { headers: { host: 'gw.example' } });
  assert.is(seen[0]!.headers.forwarded, 'for=127.0.0.1;host=gw.example;proto=http');
  assert.is(seen[0]!.headers.via, '1.1 edge-1');
  assert.is(response.headers.via, '1.1 edge-1');
});

test('rewriteLocation(): the redirects of the page', async () => {
  let location = '';
  let status = 302;
  const upstream = await startUpstream((_req, res) => res.writeHead(status, { location }).end());
  const auth = await serveRelay(redirectsRewritten(upstream.url));
  const cases: Array<[number, string, string]> = [
    [302, `${upstream.url}/api/v1/dashboard?tab=1`, 'http://gw.example/auth/dashboard?tab=1'],
    [201, '/api/v1/items/9', '/auth/items/9'],
    [302, 'https://sso.example/', 'https://sso.example/'],
  ];
  for (const [code, sent, expected] of cases) {
    [status, location] = [code, sent];
    const response = await fetchRaw(`${auth.url}/auth/login`, { headers: { host: 'gw.example' } });
    assert.is(response.status, code);
    assert.is(response.headers.location, expected);
  }
  await auth.close();
  await upstream.close();
});

test.run();
