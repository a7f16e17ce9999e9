import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { minimalProxy, proxyWithOptions, quickStart, startGateway } from './quick-start.js';

test('README three-line Quick Start: a relay that nobody started serves /auth/login on its first request', async () => {
  const authService = await startUpstream();
  const server = quickStart(authService.url, 0);
  if (!server.listening) await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  assert.is((await fetchRaw(`${base}/auth/login`)).status, 200);
  assert.is(authService.requests[0]!.url, '/login');
  server.close();
  server.closeAllConnections();
  await authService.close();
});

test('README Quick Start: /auth/login and /auth/register reach the auth service without the mount path', async () => {
  const authService = await startUpstream();
  const { server, auth, stop } = await startGateway(authService.url, 0);
  if (!server.listening) await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const login = await fetchRaw(`${base}/auth/login`);
  assert.is(login.status, 200);
  const register = await fetchRaw(`${base}/auth/register`, { method: 'POST', body: '{"user":"ada"}', headers: { 'content-type': 'application/json' } });
  assert.is(register.status, 200);
  assert.equal(
    authService.requests.map((seen) => [seen.method, seen.url, seen.body.toString()]),
    [['GET', '/login', ''], ['POST', '/register', '{"user":"ada"}']],
  );
  // preserveHost: false → the upstream's own host:port; the client's Host travels as X-Forwarded-Host.
  assert.is(authService.requests[0]!.headers.host, `127.0.0.1:${authService.port}`);
  assert.is(authService.requests[0]!.headers['x-forwarded-host'], `127.0.0.1:${(server.address() as AddressInfo).port}`);
  assert.is((await fetchRaw(`${base}/elsewhere`)).status, 404, 'outside the mount path');

  process.removeListener('SIGTERM', stop);
  await stop();
  assert.is(auth.state, 'stopped');
  await authService.close();
});

test('minimal setup: every path goes to the upstream as is', async () => {
  const upstream = await startUpstream();
  const gateway = await serveRelay(minimalProxy(upstream.url));
  await fetchRaw(`${gateway.url}/users/7?expand=roles`);
  assert.is(upstream.requests[0]!.url, '/users/7?expand=roles');
  await gateway.close();
  await upstream.close();
});

test('with options: the prefix is joined after the mount is stripped, and a failed GET is retried', async () => {
  let calls = 0;
  const authService = await startUpstream((req, res) => {
    calls++;
    if (calls === 1) res.writeHead(503).end('warming up');
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.method} ${req.url}`);
  });
  const gateway = await serveRelay(proxyWithOptions(authService.url));
  const response = await fetchRaw(`${gateway.url}/auth/login?next=%2Fhome`);
  assert.is(response.status, 200);
  assert.is(response.text, 'GET /api/v1/login?next=%2Fhome');
  assert.is(calls, 2, 'one retry after the 503');
  await gateway.close();
  await authService.close();
});

test.run();
