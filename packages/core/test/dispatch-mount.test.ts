import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, startUpstream } from '@relay/testkit';
import { createRelay, type ProxyRequest, type UpgradeTransport } from '../src/index.js';

// What a framework adapter does: the framework matched the mount, req.url is what follows it.
const afterMount = (url: string | undefined, mount: string) => (url ?? '').slice(mount.length);

test('dispatch: a path the framework already stripped is mapped under the prefix, with X-Forwarded-Prefix', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/v2' });
  await relay.startup();
  const server = createServer((req, res) => relay.dispatch(req, res, { path: afterMount(req.url, '/api'), mountPath: '/api' }));
  const base = await listen(server);
  const response = await fetchRaw(`${base}/api/users?page=2`);
  assert.is(response.status, 200);
  assert.is(upstream.requests[0]!.url, '/v2/users?page=2');
  assert.is(upstream.requests[0]!.headers['x-forwarded-prefix'], '/api');
  await fetchRaw(`${base}/api`);
  assert.is(upstream.requests[1]!.url, '/v2', 'the bare mount maps to the prefix');
  assert.is((await fetchRaw(`${base}/api/..%2fsecret`)).status, 400, 'the path checks still apply');
  await close(server);
  await relay.shutdown();
  await upstream.close();
});

test('dispatchUpgrade: the same mapping for a handshake the framework routed', async () => {
  const seen: ProxyRequest[] = [];
  const recording: UpgradeTransport = {
    kind: 'upgrade',
    name: 'recording',
    bind: () => ({
      startup() {},
      shutdown() {},
      async handle(request) {
        seen.push(request);
        return { status: 404, statusMessage: '', headers: {}, body: null };
      },
    }),
  };
  const relay = createRelay({ targetBaseUrl: 'http://127.0.0.1:9', upstreamPrefix: '/v2', websocket: recording });
  await relay.startup();
  const server = createServer();
  server.on('upgrade', (req, socket, head) => relay.dispatchUpgrade(req, socket, head, { path: afterMount(req.url, '/ws'), mountPath: '/ws/' }));
  const base = await listen(server);
  const response = await fetchRaw(`${base}/ws/room?id=1`, {
    headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
  });
  assert.is(response.status, 404, 'the transport’s answer reached the client');
  assert.is(seen.length, 1);
  assert.is(seen[0]!.path, '/v2/room?id=1');
  assert.is(seen[0]!.headers['x-forwarded-prefix'], '/ws');
  await close(server);
  await relay.shutdown();
});

test.run();
