import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { router } from '../src/index.js';

// Issue 22: a per-request target from an allow-list the relay was built with.

test('router sends each request to the target it names, keeps the rest on the relay’s own, and refuses anything else with 500', async () => {
  const main = await startUpstream();
  const eu = await startUpstream();
  const us = await startUpstream();
  const logger = memoryLogger();
  const stage = router({
    targets: { eu: `${eu.url}/v2`, us: us.url },
    // Async, as a lookup in a tenant table would be.
    choose: async (request) => request.headers['x-region'] as string | undefined,
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: main.url, upstreamPrefix: '/api', stages: [stage], logger }));
  assert.is((await fetchRaw(`${served.url}/items?x=1`, { headers: { 'x-region': 'eu' } })).status, 200);
  assert.is((await fetchRaw(`${served.url}/items`, { headers: { 'x-region': 'us' } })).status, 200);
  assert.is((await fetchRaw(`${served.url}/items`)).status, 200);
  assert.equal(eu.requests.map((r) => [r.url, r.headers.host]), [['/v2/items?x=1', `127.0.0.1:${eu.port}`]], 'under the chosen base path, with its Host');
  assert.equal(us.requests.map((r) => r.url), ['/items']);
  assert.equal(main.requests.map((r) => r.url), ['/api/items']);
  for (const steer of ['http://169.254.169.254/latest', 'toString', '__proto__']) {
    const refused = await fetchRaw(`${served.url}/items`, { headers: { 'x-region': steer } });
    assert.is(refused.status, 500, steer);
    assert.not.match(refused.text, /169\.254/);
  }
  assert.is(logger.lines.filter((l) => l.message.includes('outside its allow-list')).length, 3);
  assert.equal([main.requests.length, eu.requests.length, us.requests.length], [1, 1, 1], 'nothing was sent for a refused choice');
  assert.throws(() => router({ targets: { a: 'ftp://x' }, choose: () => 'a' }), /http: or https:/);
  assert.throws(() => router({ targets: {}, choose: () => 'a', chooser: 1 } as never), /chooser/);
  await served.close();
  await Promise.all([main.close(), eu.close(), us.close()]);
});

test('router: the bare mount goes to the chosen target as core maps it (its bare base path, or "/"), the query byte for byte', async () => {
  const main = await startUpstream();
  const based = await startUpstream();
  const bare = await startUpstream();
  const stage = router({ targets: { based: `${based.url}/v2`, bare: bare.url }, choose: (request) => request.headers['x-to'] as string | undefined });
  const served = await serveRelay(createRelay({ targetBaseUrl: `${main.url}/v1`, mountPath: '/auth', stages: [stage], logger: memoryLogger() }));
  try {
    for (const to of ['based', 'bare', undefined]) {
      for (const path of ['/auth', '/auth?x=%41&y', '/auth/', '/auth/u?x']) {
        const headers: Record<string, string> = to === undefined ? {} : { 'x-to': to };
        assert.is((await fetchRaw(`${served.url}${path}`, { headers })).status, 200, `${String(to)} ${path}`);
      }
    }
    assert.equal(based.requests.map((r) => r.url), ['/v2', '/v2?x=%41&y', '/v2/', '/v2/u?x']);
    assert.equal(bare.requests.map((r) => r.url), ['/', '/?x=%41&y', '/', '/u?x']);
    assert.equal(main.requests.map((r) => r.url), ['/v1', '/v1?x=%41&y', '/v1/', '/v1/u?x'], 'the relay’s own target, for comparison');
  } finally {
    await served.close();
    await Promise.all([main.close(), based.close(), bare.close()]);
  }
});

test.run();
