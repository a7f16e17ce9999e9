// Review s36 (black box) of @relay/headers, issue 4: header rules through a real relay (add/set/remove in both
// directions, per route, Host rewriting), hop-by-hop and Connection-listed headers against allow lists and rules,
// and rewriteLocation() for Location / Content-Location / Refresh (relative, absolute, other hosts and ports,
// https at the relay in front of an http upstream).
import { createServer as createHttpsServer } from 'node:https';
import { request as httpsRequest } from 'node:https';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, sendRaw, serveRelay, startUpstream, tlsFixture, type Upstream } from '@relay/testkit';
import { createRelay } from '@relay/core';
// Not a dependency of @relay/headers: the routing stages' source, for per-route header rules.
import { routes } from '../../routing/src/index.js';
import { headers, rewriteLocation } from '../src/index.js';

/** An upstream answering with a JSON echo of what it received, plus the response headers asked for in `x-respond` (JSON). */
async function echoing(): Promise<Upstream> {
  return startUpstream((req, res) => {
    const extra = req.headers['x-respond'];
    const answer: Record<string, string | string[]> = extra === undefined ? {} : (JSON.parse(String(extra)) as Record<string, string | string[]>);
    const body = JSON.stringify({ url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...answer });
    res.end(body);
  });
}

// README: "Setting host changes only the header (name-based virtual hosting), never where the relay connects."
test('extraRequest host sets the Host the upstream sees, whatever the client sent, and the relay still connects to the target', async () => {
  const upstream = await echoing();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [headers({ extraRequest: { Host: 'api.internal' } })] }));
  const response = await fetchRaw(`${served.url}/v`, { headers: { host: 'evil.example' } });
  assert.is(response.status, 200);
  const seen = JSON.parse(response.text) as { headers: Record<string, string> };
  assert.is(seen.headers.host, 'api.internal');
  assert.is(seen.headers['x-forwarded-host'], 'evil.example', 'the client Host is only reported');
  await served.close();
  await upstream.close();
});

// routing README: "routes([{ when, stages }, …]) runs the stages of the first matching route"; issue 4: header rules.
test('per-route header rules: each route adds and drops its own headers in both directions, the other route none', async () => {
  const upstream = await echoing();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        routes([
          { when: { path: '/a/**' }, stages: [headers({ extraRequest: { 'x-route': 'a' }, dropRequest: ['x-client'], extraResponse: { 'x-served-by': 'route-a' } })] },
          { stages: [] },
        ]),
      ],
    }),
  );
  const a = await fetchRaw(`${served.url}/a/1`, { headers: { 'x-client': 'c', 'X-Route': 'forged' } });
  const b = await fetchRaw(`${served.url}/b/1`, { headers: { 'x-client': 'c', 'X-Route': 'forged' } });
  const seenA = JSON.parse(a.text) as { headers: Record<string, string> };
  const seenB = JSON.parse(b.text) as { headers: Record<string, string> };
  assert.is(seenA.headers['x-route'], 'a');
  assert.is(seenA.headers['x-client'], undefined);
  assert.is(a.headers['x-served-by'], 'route-a');
  assert.is(seenB.headers['x-route'], 'forged');
  assert.is(seenB.headers['x-client'], 'c');
  assert.is(b.headers['x-served-by'], undefined);
  await served.close();
  await upstream.close();
});

// RFC 9110 §7.6.1: a proxy removes hop-by-hop fields and those the Connection header names; README: they "cannot be
// brought back by an allow list".
test('allow lists naming hop-by-hop or Connection-listed headers never let them through, in either direction', async () => {
  const upstream = await echoing();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [headers({ allowRequest: ['x-secret', 'keep-alive', 'upgrade', 'x-respond', 'proxy-authorization'], allowResponse: ['x-upstream-secret', 'content-type', 'proxy-authenticate', 'keep-alive', 'x-kept'] })],
    }),
  );
  const respond = JSON.stringify({ connection: 'x-upstream-secret', 'x-upstream-secret': 'internal', 'proxy-authenticate': 'Basic realm="internal"', 'keep-alive': 'timeout=99', 'x-kept': 'yes' });
  const raw = await sendRaw(
    served.port,
    `GET /h HTTP/1.1\r\nHost: gw\r\nConnection: x-secret, close\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eA==\r\nX-Respond: ${respond}\r\n\r\n`,
  );
  const [head, body] = [raw.slice(0, raw.indexOf('\r\n\r\n')).toLowerCase(), raw.slice(raw.indexOf('\r\n\r\n') + 4)];
  assert.match(head, /^http\/1.1 200/);
  const seen = JSON.parse(body) as { headers: Record<string, string> };
  assert.is(seen.headers['x-secret'], undefined, 'named in the client Connection header');
  assert.is(seen.headers['proxy-authorization'], undefined);
  assert.is(seen.headers['keep-alive'], undefined);
  assert.not.match(head, 'x-upstream-secret', 'named in the upstream Connection header');
  assert.not.match(head, 'proxy-authenticate');
  assert.not.match(head, 'timeout=99');
  assert.match(head, 'x-kept: yes');
  await served.close();
  await upstream.close();
});

// nginx proxy_redirect: "Sets the text that should be changed in the “Location” and “Refresh” header fields of a proxied
// server response" (the README likens rewriteLocation() to `proxy_redirect default`). A Refresh naming the upstream
// would send the browser to an internal address.
test('rewriteLocation rewrites the URL in a Refresh header naming the upstream, as nginx proxy_redirect does', async () => {
  let upstreamUrl = '';
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { refresh: `0; url=${upstreamUrl}/api/v1/next`, 'content-length': 0 }).end();
  });
  upstreamUrl = upstream.url;
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/api/v1', mountPath: '/auth', stages: [rewriteLocation()] }));
  try {
    const response = await fetchRaw(`${served.url}/auth/x`, { headers: { host: 'gw.example' } });
    assert.is(response.headers.refresh, '0; url=http://gw.example/auth/next');
  } finally {
    await served.close();
    await upstream.close();
  }
});

/** A GET over TLS to the relay at `port`, with `host` as the Host header; resolves with status and headers. */
function getTls(port: number, path: string, host: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, headers: { host }, rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

// README: the public origin defaults to "the client's scheme and Host"; nginx proxy_redirect default with $scheme.
test('TLS at the relay in front of an http upstream: an upstream Location becomes https on the client Host and port; others are left alone', async () => {
  let upstreamUrl = '';
  const upstream = await startUpstream((req, res) => {
    const port = new URL(upstreamUrl).port;
    const locations: Record<string, string> = {
      '/api/v1/abs': `${upstreamUrl}/api/v1/dashboard?tab=1#top`,
      '/api/v1/rel': '/api/v1/login',
      '/api/v1/other-port': `http://127.0.0.1:${Number(port) + 1 > 65535 ? 1 : Number(port) + 1}/api/v1/x`,
      '/api/v1/other-host': 'https://sso.example.com/authorize?x=1',
      '/api/v1/https-upstream': `https://127.0.0.1:${port}/api/v1/x`,
      '/api/v1/outside': `${upstreamUrl}/health`,
    };
    res.writeHead(302, { location: locations[req.url ?? ''] ?? '/', 'content-location': `${upstreamUrl}/api/v1/items/9`, 'content-length': 0 }).end();
  });
  upstreamUrl = upstream.url;
  const relay = createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/api/v1', mountPath: '/auth', stages: [rewriteLocation()] });
  await relay.startup();
  const server = createHttpsServer({ key: tlsFixture.key, cert: tlsFixture.cert }, relay.handle);
  await listen(server);
  const port = (server.address() as { port: number }).port;
  try {
    const port1 = Number(new URL(upstreamUrl).port);
    const abs = await getTls(port, '/auth/abs', 'gw.example:8443');
    assert.is(abs.headers.location, 'https://gw.example:8443/auth/dashboard?tab=1#top');
    assert.is(abs.headers['content-location'], 'https://gw.example:8443/auth/items/9');
    assert.is((await getTls(port, '/auth/rel', 'gw.example:8443')).headers.location, '/auth/login');
    assert.is((await getTls(port, '/auth/other-port', 'gw.example:8443')).headers.location, `http://127.0.0.1:${port1 + 1 > 65535 ? 1 : port1 + 1}/api/v1/x`);
    assert.is((await getTls(port, '/auth/other-host', 'gw.example:8443')).headers.location, 'https://sso.example.com/authorize?x=1');
    assert.is((await getTls(port, '/auth/https-upstream', 'gw.example:8443')).headers.location, `https://127.0.0.1:${port1}/api/v1/x`, 'another scheme is another origin');
    assert.is((await getTls(port, '/auth/outside', 'gw.example:8443')).headers.location, `${upstreamUrl}/health`, 'outside the prefix');
  } finally {
    await close(server);
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

// README: publicOrigin "Set it behind a load balancer that terminates TLS (the relay would otherwise see http)".
test('behind a TLS-terminating load balancer, publicOrigin gives https Locations while the relay itself speaks http', async () => {
  let upstreamUrl = '';
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(301, { location: `${upstreamUrl}/next`, 'content-length': 0 }).end();
  });
  upstreamUrl = upstream.url;
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, trustProxy: true, stages: [rewriteLocation({ publicOrigin: 'https://app.example.com' })] }));
  const response = await fetchRaw(`${served.url}/go`, { headers: { host: 'internal-lb:80', 'x-forwarded-proto': 'https' } });
  assert.is(response.status, 301);
  assert.is(response.headers.location, 'https://app.example.com/next');
  await served.close();
  await upstream.close();
});

test.run();
