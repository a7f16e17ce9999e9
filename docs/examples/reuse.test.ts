// docs/reuse.md: http-proxy-middleware and Fastify proxies using our cookie, header and Location
// rules in their hooks pass the same assertions as a relay running them as stages, against one
// real upstream; getInventory and submitOrder retry fetch against a flaky real upstream.
import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { cookies } from '@relay/cookies';
import { headers, rewriteLocation } from '@relay/headers';
import { close, fetchRaw, listen, startUpstream, type Upstream } from '@relay/testkit';
import { cookieOptions, expressGateway, fastifyGateway, getInventory, headerOptions, submitOrder } from './reuse.js';

let authService: Upstream;

test.before(async () => {
  authService = await startUpstream((req, res) => {
    if (req.url === '/api/login') {
      res.setHeader('Set-Cookie', ['sid="s:1,2"; Domain=auth.internal; Path=/; HttpOnly', 'theme=dark; Path=/; Max-Age=60']);
      res.setHeader('X-Debug-Info', 'db=primary-1');
      res.writeHead(302, { location: `${authService.url}/api/dashboard?tab=1` });
      res.end();
      return;
    }
    if (req.url === '/api/items' && req.method === 'POST') {
      // 201 Created with the new resource's URL, and a Refresh on to the list (as a login page
      // moves on): each names the upstream's own origin, under its prefix.
      res.writeHead(201, {
        'content-type': 'text/plain',
        location: `${authService.url}/api/items/7`,
        'content-location': `${authService.url}/api/items/7`,
        refresh: `0; url=${authService.url}/api/items`,
      });
      res.end('created');
      return;
    }
    if (req.url === '/api/logout') {
      res.writeHead(303, { location: '/api/login', 'content-type': 'text/plain' });
      res.end('bye');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-debug-info': 'db=primary-1' });
    res.end(`upstream saw ${req.url}`);
  });
});

test.after(async () => {
  await authService.close();
});

/** The assertions every proxy must pass, whichever way it runs our rules. */
async function assertSameRules(base: string, name: string): Promise<void> {
  const login = await fetchRaw(`${base}/auth/login`);
  assert.is(login.status, 302, name);
  const setCookie = login.rawHeaders.filter((_value, index) => index % 2 === 1 && login.rawHeaders[index - 1]!.toLowerCase() === 'set-cookie');
  assert.equal(setCookie, ['sid="s:1,2"; Path=/auth; HttpOnly', 'theme=dark; Path=/auth; Max-Age=60'], `${name}: cookies rewritten, each its own header`);
  assert.is(login.headers.location, `${base}/auth/dashboard?tab=1`, `${name}: absolute Location on the upstream, made public`);
  assert.is(login.headers['x-debug-info'], undefined, `${name}: dropped`);
  assert.is(login.headers['x-frame-options'], 'DENY', `${name}: added`);
  const logout = await fetchRaw(`${base}/auth/logout`);
  assert.is(logout.status, 303, name);
  assert.is(logout.headers.location, '/auth/login', `${name}: path-absolute Location mapped to the mount path`);
  assert.is(logout.text, 'bye', name);
  const created = await fetchRaw(`${base}/auth/items`, { method: 'POST', body: 'x' });
  assert.is(created.status, 201, name);
  assert.is(created.headers.location, `${base}/auth/items/7`, `${name}: Location made public`);
  assert.is(created.headers['content-location'], `${base}/auth/items/7`, `${name}: Content-Location made public too`);
  assert.is(created.headers.refresh, `0; url=${base}/auth/items`, `${name}: and the URL of Refresh`);
  const page = await fetchRaw(`${base}/auth/page?x=1`);
  assert.is(page.text, 'upstream saw /api/page?x=1', `${name}: same path mapping`);
}

test('a relay with the stages, an http-proxy-middleware proxy and a Fastify proxy with the plain functions: same results', async () => {
  const relay = createRelay({
    targetBaseUrl: authService.url,
    upstreamPrefix: '/api',
    mountPath: '/auth',
    stages: [cookies(cookieOptions), rewriteLocation(), headers(headerOptions)],
  });
  await relay.startup();
  const relayServer = http.createServer(relay.handle);
  const hpmServer = http.createServer(expressGateway(authService.url));
  const fastify = await fastifyGateway(authService.url);
  try {
    await assertSameRules(await listen(relayServer), 'relay');
    await assertSameRules(await listen(hpmServer), 'http-proxy-middleware');
    await assertSameRules(await fastify.listen({ host: '127.0.0.1', port: 0 }), 'fastify');
  } finally {
    await Promise.all([close(relayServer), close(hpmServer), fastify.close(), relay.shutdown()]);
  }
});

test('getInventory: request header rules on a Headers object; a 503 and a reset are retried, within the deadline', async () => {
  const inventory = await startUpstream((req, res, seen) => {
    const index = inventory.requests.indexOf(seen);
    if (index === 1) {
      req.socket.destroy();
      return;
    }
    res.writeHead(index === 0 ? 503 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ cookie: req.headers.cookie ?? null, client: req.headers['x-client'], accept: req.headers.accept }));
  });
  try {
    const response = await getInventory(inventory.url, { headers: { cookie: 'sid=secret', accept: 'application/json', 'x-client': 'spoofed' } });
    assert.is(response.status, 200);
    assert.equal(await response.json(), { cookie: null, client: 'storefront', accept: 'application/json' });
    assert.is(inventory.requests.length, 3, '503, reset, 200');
  } finally {
    await inventory.close();
  }
});

test('submitOrder: retryPolicy in a loop of its own retries a POST it opted in, honouring Retry-After', async () => {
  const orders = await startUpstream((_req, res, seen) => {
    const index = orders.requests.indexOf(seen);
    res.writeHead(index === 0 ? 429 : 201, index === 0 ? { 'retry-after': '0' } : {});
    res.end(index === 0 ? 'slow down' : `created ${seen.body.toString()}`);
  });
  try {
    const response = await submitOrder(orders.url, 'sku-1');
    assert.is(response.status, 201);
    assert.is(await response.text(), 'created sku-1');
    assert.equal(orders.requests.map((seen) => [seen.method, seen.headers['idempotency-key'], seen.body.toString()]), [
      ['POST', 'order-42', 'sku-1'],
      ['POST', 'order-42', 'sku-1'],
    ]);
  } finally {
    await orders.close();
  }
});

test.run();
