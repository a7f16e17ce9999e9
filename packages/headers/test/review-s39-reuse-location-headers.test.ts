// Review s39 (reuse, issue 23): docs/reuse.md promises that an http-proxy-middleware proxy and a
// Fastify proxy using the plain functions "pass the same assertions as a relay running cookies(),
// rewriteLocation() and headers() as stages". rewriteLocation() rewrites Location,
// Content-Location and the URL of Refresh; the plain side must not leak the upstream's address
// where the relay hides it.
import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { cookies } from '@relay/cookies';
import { close, fetchRaw, listen, startUpstream, type Upstream } from '@relay/testkit';
import { cookieOptions, expressGateway, fastifyGateway, headerOptions } from '../../../docs/examples/reuse.js';
import { headers, rewriteLocation } from '../src/index.js';

let authService: Upstream;

test.before(async () => {
  authService = await startUpstream((_req, res) => {
    // 201 Created with the new resource's URL, and a page that moves on by Refresh (as a login
    // page does): both name the upstream's own origin, under its prefix.
    res.writeHead(201, {
      'content-type': 'text/plain',
      location: `${authService.url}/api/items/7`,
      'content-location': `${authService.url}/api/items/7`,
      refresh: `0; url=${authService.url}/api/items`,
    });
    res.end('created');
  });
});

test.after(async () => {
  await authService.close();
});

async function locations(base: string): Promise<Record<string, string | undefined>> {
  const response = await fetchRaw(`${base}/auth/items`, { method: 'POST', body: 'x' });
  assert.is(response.status, 201);
  return {
    location: response.headers.location as string | undefined,
    'content-location': response.headers['content-location'] as string | undefined,
    refresh: response.headers.refresh as string | undefined,
  };
}

test('docs/reuse.md hooks (http-proxy-middleware, @fastify/http-proxy) rewrite Content-Location and Refresh as the rewriteLocation() stage does', async () => {
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
    const relayBase = await listen(relayServer);
    const viaRelay = await locations(relayBase);
    assert.equal(
      viaRelay,
      { location: `${relayBase}/auth/items/7`, 'content-location': `${relayBase}/auth/items/7`, refresh: `0; url=${relayBase}/auth/items` },
      'the stage rewrites all three',
    );
    for (const [name, base] of [
      ['http-proxy-middleware', await listen(hpmServer)],
      ['fastify', await fastify.listen({ host: '127.0.0.1', port: 0 })],
    ] as const) {
      const seen = await locations(base);
      assert.equal(
        seen,
        { location: `${base}/auth/items/7`, 'content-location': `${base}/auth/items/7`, refresh: `0; url=${base}/auth/items` },
        `${name}: same rules as the relay, no upstream address left`,
      );
    }
  } finally {
    await Promise.all([close(relayServer), close(hpmServer), fastify.close(), relay.shutdown()]);
  }
});

test.run();
