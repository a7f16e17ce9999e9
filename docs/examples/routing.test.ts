import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, startUpstream } from '@relay/testkit';
import { routingExample } from './readme-routing.js';

test('@relay/routing README: routes, rewrites and a host condition', async () => {
  const upstream = await startUpstream();
  const { gateway, server } = await routingExample(upstream.url, 0);
  if (!server.listening) await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const v1 = JSON.parse((await fetchRaw(`${base}/api/v1/users?page=2`, { headers: { host: 'eu.internal.example.com' } })).text);
  assert.equal([v1.url, v1.headers['x-internal']], ['/v1/users?page=2', '1']);
  const user = JSON.parse((await fetchRaw(`${base}/u/42`)).text);
  assert.equal([user.url, user.headers['x-internal']], ['/users/42', undefined]);
  assert.is((await fetchRaw(`${base}/u/42`, { method: 'DELETE' })).status, 404);
  assert.is((await fetchRaw(`${base}/health`)).status, 200);
  assert.is((await fetchRaw(`${base}/secret`)).status, 404);
  assert.is(upstream.requests.length, 3);
  await close(server);
  await gateway.shutdown();
  await upstream.close();
});

test.run();
