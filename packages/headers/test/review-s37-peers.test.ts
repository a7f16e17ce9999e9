// Review s37 (headers vs peers): http-proxy's autoRewrite against an IPv6 target, RFC 7239 §6 quoting of an IPv6
// Host with a port in Forwarded, and array extras (http-proxy "headers with arrays"). All pass today: regression
// coverage for cases the earlier reviews did not reach.
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { headers, rewriteLocation } from '../src/index.js';

// http-proxy setRedirectHostRewrite / nginx proxy_redirect default: the target's authority may be a bracketed IPv6
// literal (RFC 3986 §3.2.2); a Location naming it is the upstream origin and is rewritten to the client's Host.
test('rewriteLocation: a 302 naming an IPv6 upstream ([::1]:port) is rewritten to the client Host', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(302, { location: `http://[::1]:${(upstream.server.address() as AddressInfo).port}/next?x=1` });
    res.end();
  });
  await new Promise<void>((resolve) => upstream.server.close(() => resolve()));
  await new Promise<void>((resolve) => upstream.server.listen(0, '::1', resolve));
  const port = (upstream.server.address() as AddressInfo).port;
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://[::1]:${port}`, stages: [rewriteLocation()] }));
  try {
    const response = await fetchRaw(`${served.url}/x`, { headers: { host: 'gw.example' } });
    assert.is(response.status, 302);
    assert.is(response.headers.location, 'http://gw.example/next?x=1');
  } finally {
    await served.close();
    await upstream.close();
  }
});

// RFC 7239 §4/§6: ':' '[' ']' are not tchars, so a host of "[v6]:port" must be a quoted-string; http-proxy's xfwd
// passes the Host as X-Forwarded-Host unchanged.
test('forwarded: a client Host "[2001:db8::5]:8443" is quoted in Forwarded and passed as is in X-Forwarded-Host; array extras are separate lines', async () => {
  const upstream = await startUpstream();
  const stages = [headers({ forwarded: true, extraRequest: { 'x-a': ['1', '2'] } })];
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages }));
  try {
    const response = await fetchRaw(`${served.url}/f`, { headers: { host: '[2001:db8::5]:8443' } });
    assert.is(response.status, 200);
    const seen = upstream.requests[0]!;
    assert.is(seen.headers.forwarded, 'for=127.0.0.1;host="[2001:db8::5]:8443";proto=http');
    assert.is(seen.headers['x-forwarded-host'], '[2001:db8::5]:8443');
    const extra = seen.rawHeaders.filter((_value, index, raw) => index % 2 === 1 && raw[index - 1]!.toLowerCase() === 'x-a');
    assert.equal(extra, ['1', '2']);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
