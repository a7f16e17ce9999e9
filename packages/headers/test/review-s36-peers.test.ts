// Review s36 (peers): http-proxy's / http-proxy-3's web-outgoing "#setRedirectHostRewrite" cases (autoRewrite,
// hostRewrite, protocolRewrite; 201/301/302/307/308; another host or port left alone; protocol-relative URLs),
// ported to rewriteLocation() on a relay and to locationRewriter. All pass today. Where Relay differs on purpose
// (it rewrites Location on every status, like nginx's proxy_redirect, and maps paths under the prefix), the test
// follows packages/headers/README.md.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { locationRewriter, rewriteLocation } from '../src/index.js';

// http-proxy "rewrites location host with autoRewrite on 201/301/302/307/308".
test('a Location on the upstream origin is rewritten to the client Host on 201, 301, 302, 307 and 308', async () => {
  const upstream = await startUpstream((req, res) => {
    const status = Number(req.url!.slice(1));
    res.writeHead(status, { location: `http://127.0.0.1:${upstream.port}/` });
    res.end();
  });
  const gw = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [rewriteLocation()] }));
  try {
    for (const status of [201, 301, 302, 307, 308]) {
      const response = await fetchRaw(`${gw.url}/${status}`, { headers: { host: 'ext-auto.com' } });
      assert.is(response.status, status);
      assert.is(response.headers.location, 'http://ext-auto.com/', `on ${status}`);
    }
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy "not when the redirected location does not match target host / port", "handles protocol relative URLs",
// protocolRewrite + hostRewrite ("works together") as publicOrigin.
test('locationRewriter: another host or port is kept, the upstream in any case or with its default port is rewritten, publicOrigin sets scheme and host', () => {
  const rewrite = locationRewriter({ targetBaseUrl: 'http://backend.com' });
  const client = { scheme: 'http' as const, host: 'ext-auto.com' };
  assert.is(rewrite('http://some-other/', client), 'http://some-other/');
  assert.is(rewrite('http://backend.com:8080/', client), 'http://backend.com:8080/');
  assert.is(rewrite('HTTP://BACKEND.COM:80/x?y=1#f', client), 'http://ext-auto.com/x?y=1#f');
  assert.is(rewrite('//backend.com/x', client), 'http://ext-auto.com/x');
  assert.is(rewrite('https://backend.com/', client), 'https://backend.com/');
  const manual = locationRewriter({ targetBaseUrl: 'http://backend.com', publicOrigin: 'https://ext-manual.com' });
  assert.is(manual('http://backend.com/', client), 'https://ext-manual.com/');
  const mounted = locationRewriter({ targetBaseUrl: 'http://auth:8000', upstreamPrefix: '/api/v1', mountPath: '/auth' });
  assert.is(mounted('/api/v1'), '/auth');
  assert.is(mounted('/api/v1x'), '/api/v1x');
  assert.is(mounted('/api/v1?x=1'), '/auth?x=1');
});

test.run();
