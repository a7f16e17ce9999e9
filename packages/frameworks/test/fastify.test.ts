// relayPlugin on a real Fastify 5 server, with a real HTTP client and a real ws client.
import fastify, { type FastifyInstance } from 'fastify';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { createRelay } from '@relay/core';
import { fetchRaw, sendRaw } from '@relay/testkit';
import { relayPlugin } from '../src/fastify.js';
import { checkGet, checkStreaming, checkTraversal, checkUnparsedBody, checkWebSocket, startBackend, type Backend } from './fixtures.js';

let backend: Backend;
let app: FastifyInstance;
let base: string;

test.before(async () => {
  backend = await startBackend();
  app = fastify();
  app.post('/json', async (request) => ({ parsed: request.body }));
  app.addHttpMethod('PROPFIND', { hasBody: true });
  await app.register(relayPlugin, { relay: backend.relay(), prefix: '/api' });
  await app.register(relayPlugin, { relay: backend.relay(), prefix: '/v2/other' });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});

test.after(async () => {
  await app.close();
  await backend.close();
});

test('HTTP under the prefix: path after it, query byte for byte, X-Forwarded-Prefix', async () => {
  await checkGet(base, '/api');
  await checkGet(base, '/v2/other');
  assert.is((await fetchRaw(`${base}/apix/users`)).status, 404, 'a prefix matches at a segment boundary');
});

test('every method Fastify knows, those added with addHttpMethod before the plugin included', async () => {
  for (const method of ['HEAD', 'OPTIONS', 'PATCH', 'DELETE', 'PROPFIND']) {
    const response = await fetchRaw(`${base}/api/x`, { method, body: method === 'PROPFIND' ? '<propfind/>' : undefined });
    assert.is(response.status, 200, method);
    if (method !== 'HEAD') assert.equal([JSON.parse(response.text).method, JSON.parse(response.text).url], [method, '/x']);
  }
  const propfind = JSON.parse((await fetchRaw(`${base}/api/x`, { method: 'PROPFIND', headers: { 'content-type': 'application/xml' }, body: '<propfind/>' })).text);
  assert.is(propfind.body, '<propfind/>');
});

test("Fastify's body parsers do not touch the relay's bodies; its own routes still parse", async () => {
  await checkUnparsedBody(base, '/api');
  const own = await fetchRaw(`${base}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  assert.equal(JSON.parse(own.text), { parsed: { a: 1 } });
});

test('request and response bodies stream', async () => {
  await checkStreaming(base, '/api');
});

test('WebSocket upgrades on the Fastify server, per prefix; others refused', async () => {
  await checkWebSocket(base, '/api');
  await checkWebSocket(base, '/v2/other');
  const stray = new WebSocket(`${base.replace('http:', 'ws:')}/nowhere`);
  const status = await new Promise<number>((resolve) => stray.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  assert.is(status, 404);
  stray.on('error', () => {});
  stray.terminate();
});

test('client traversal is refused by the relay', async () => {
  await checkTraversal(base, '/api', backend.upstream);
  // Fastify's router leaves "%2e%2e" as it is (its params decode it): the relay refuses it.
  const before = backend.upstream.requests.length;
  const response = await sendRaw(Number(new URL(base).port), 'GET /api/%2e%2e/%2e%2e/etc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(response, /^HTTP\/1.1 400 /);
  assert.is(backend.upstream.requests.length, before);
});

test('the relay starts with the app and drains on app.close(); options are checked', async () => {
  const relay = createRelay({ targetBaseUrl: backend.upstream.url });
  const other = fastify();
  await other.register(relayPlugin, { relay, prefix: '/x' });
  await other.ready();
  assert.is(relay.state, 'running');
  await other.close();
  assert.is(relay.state, 'stopped');
  const typo = fastify();
  typo.register(relayPlugin, { relay, prefx: '/x' } as never);
  try {
    await typo.ready();
    assert.unreachable('an unknown option must be refused');
  } catch (error) {
    assert.match((error as Error).message, /unknown option "prefx" \(did you mean "prefix"\?/);
  }
  await typo.close();
});

test.run();
