// Review s40b: Fastify over HTTP/2 (h2c). An onRequest hook that sets request.headers.host works
// on HTTP/1.1 (the upstream gets X-Forwarded-Host: the app's host), but on HTTP/2 the app's Host
// is read beside the client's :authority as if the client had sent both, and the client gets
// 400 Bad Request for a request that was valid.
import { connect } from 'node:http2';
import fastify from 'fastify';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, h2Request } from '@relay/testkit';
import { relayPlugin } from '../src/fastify.js';
import { startBackend, type Backend } from './fixtures.js';

let backend: Backend;

test.before(async () => {
  backend = await startBackend();
});

test.after(async () => {
  await backend.close();
});

test('Fastify http2: a Host the onRequest hook set is the app\'s edit, not a client :authority/Host conflict (400)', async () => {
  const plain = fastify();
  plain.addHook('onRequest', async (request) => {
    request.headers.host = 'tenant.test';
  });
  await plain.register(relayPlugin, { relay: backend.relay(), prefix: '/api' });
  const h2 = fastify({ http2: true });
  h2.addHook('onRequest', async (request) => {
    request.headers.host = 'tenant.test';
  });
  await h2.register(relayPlugin, { relay: backend.relay(), prefix: '/api' });
  const session = connect(await h2.listen({ port: 0, host: '127.0.0.1' }));
  try {
    const overHttp1 = await fetchRaw(`${await plain.listen({ port: 0, host: '127.0.0.1' })}/api/orders`);
    assert.is(overHttp1.status, 200, 'HTTP/1.1: the edit is accepted');
    assert.is(backend.upstream.requests.at(-1)!.headers['x-forwarded-host'], 'tenant.test');
    const before = backend.upstream.requests.length;
    const overHttp2 = await h2Request(session, { ':method': 'GET', ':path': '/api/orders' });
    assert.is(overHttp2.headers[':status'], 200, `HTTP/2: the same app, the same edit: ${overHttp2.body}`);
    assert.is(backend.upstream.requests.length, before + 1);
  } finally {
    session.close();
    await Promise.all([plain.close(), h2.close()]);
  }
});

test.run();
