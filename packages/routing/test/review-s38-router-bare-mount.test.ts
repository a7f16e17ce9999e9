// Review s38d: router() on the bare mount path when the relay's target has a base path and the chosen one has none.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { router } from '../src/index.js';

test('router(): GET /auth and /auth?x=1 (the bare mount) reach the chosen target at "/" with the query, not 400 ERR_BAD_PATH', async () => {
  const main = await startUpstream();
  const chosen = await startUpstream();
  const logger = memoryLogger();
  const relay = createRelay({
    targetBaseUrl: `${main.url}/v1`,
    mountPath: '/auth',
    logger,
    stages: [router({ targets: { other: chosen.url }, choose: () => 'other' })],
  });
  const served = await serveRelay(relay);
  try {
    const results: Array<[string, number]> = [];
    for (const path of ['/auth/', '/auth/users', '/auth', '/auth?x=1']) results.push([path, (await fetchRaw(`${served.url}${path}`)).status]);
    assert.equal(results, [['/auth/', 200], ['/auth/users', 200], ['/auth', 200], ['/auth?x=1', 200]]);
    assert.equal(chosen.requests.map((r) => r.url), ['/', '/users', '/', '/?x=1']);
    assert.equal(main.requests.length, 0);
    assert.equal(logger.lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.message), []);
  } finally {
    await served.close();
    await Promise.all([main.close(), chosen.close()]);
  }
});

test.run();
