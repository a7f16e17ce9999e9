import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { serviceToService } from './headers.js';
import { authServiceGateway, versionedApiGateway } from './real-world.js';

async function baseOf(server: Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('Example 1, auth service proxy: cookies bound to the app, a failed GET retried', async () => {
  let logins = 0;
  const authService = await startUpstream((req, res) => {
    if (req.url === '/login' && ++logins === 1) {
      res.writeHead(502).end();
      return;
    }
    res.writeHead(200, { 'set-cookie': 'sid=s1; Domain=auth-service; Path=/; HttpOnly' }).end(`${req.method} ${req.url}`);
  });
  const { server, stop } = await authServiceGateway(authService.url, 0);
  const base = await baseOf(server);
  const login = await fetchRaw(`${base}/auth/login`);
  assert.equal([login.status, login.text, login.headers['set-cookie']], [200, 'GET /login', ['sid=s1; Path=/; HttpOnly']]);
  assert.is(logins, 2);
  assert.is((await fetchRaw(`${base}/auth/logout`, { method: 'POST' })).text, 'POST /logout');
  process.removeListener('SIGTERM', stop);
  await stop();
  await authService.close();
});

test('Example 2, versioned API: /api/users → /api/v2/users', async () => {
  const api = await startUpstream();
  const { server, stop } = await versionedApiGateway(api.url, 0);
  const base = await baseOf(server);
  await fetchRaw(`${base}/api/users?active=1`);
  assert.is(api.requests[0]!.url, '/api/v2/users?active=1');
  process.removeListener('SIGTERM', stop);
  await stop();
  await api.close();
});

test("Example 3, service-to-service auth: the service's token replaces the client's", async () => {
  const internal = await startUpstream();
  const gateway = await serveRelay(serviceToService(internal.url, 'service-token'));
  await fetchRaw(`${gateway.url}/reports`, { headers: { authorization: 'Bearer end-user' } });
  assert.equal([internal.requests[0]!.headers.authorization, internal.requests[0]!.headers['x-service-auth']], [undefined, 'service-token']);
  await gateway.close();
  await internal.close();
});

test.run();
