// healthCheck options that could only fail later are refused when balance() is called, with an error
// naming the option: a path node cannot send (every check, then every request, would fail) and an
// empty list of passing statuses (no check could pass, every target would go out).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { balance } from '../src/index.js';
import { named } from './helpers.js';

const targets = ['http://127.0.0.1:1'];

test('healthCheck.path that node cannot send (a space) is refused when balance() is called, not by answering every request 500', async () => {
  let built: ReturnType<typeof balance> | null = null;
  let message = '';
  try {
    built = balance({ targets: ['http://127.0.0.1:1'], healthCheck: { path: '/he alth' } });
  } catch (error) {
    message = (error as Error).message;
  }
  if (built === null) {
    assert.match(message, /healthCheck\.path/, 'the error names the option');
    return;
  }
  // Built: see what a production user then gets.
  const up = await named('up');
  const pool = balance({ targets: [up.url], healthCheck: { path: '/he alth' } });
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [pool] }));
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await fetchRaw(served.url)).status);
  pool.stop();
  await served.close();
  await up.close();
  assert.unreachable(`balance() accepted healthCheck.path '/he alth'; the healthy upstream's requests then got ${statuses.join(', ')}`);
});

test("healthCheck.path: a control character, a character above U+00FF and '#' are refused with a TypeError naming the option", () => {
  for (const path of ['/health\t', '/health\n', '/h\u0000', '/gesundheit-\u0101', '/health#x']) {
    assert.throws(
      () => balance({ targets, healthCheck: { path } }),
      (error: Error) => error instanceof TypeError && error.message.includes('healthCheck.path'),
      JSON.stringify(path),
    );
  }
});

test('healthCheck.path: what node sends is accepted (percent-encoded, a query, latin-1 as node writes it)', () => {
  for (const path of ['/he%20alth', '/health?full=1&x=%23', '/~status/', '/caf\u00e9']) {
    balance({ targets, healthCheck: { path } }).stop();
  }
});

test('healthCheck.statuses: [] is refused (or means the default): it must not make every check fail and take a serving target out', async () => {
  let message = '';
  let pool: ReturnType<typeof balance> | null = null;
  const up = await startUpstream((_req, res) => res.end('ok'));
  try {
    pool = balance({ targets: [up.url], healthCheck: { path: '/health', statuses: [], interval: 50, unhealthyThreshold: 1 } });
  } catch (error) {
    message = (error as Error).message;
  }
  if (pool === null) {
    await up.close();
    assert.match(message, /healthCheck\.statuses/);
    return;
  }
  await pool.start();
  assert.ok(await waitFor(() => up.requests.length >= 3, 5_000), 'checks ran');
  const healthy = pool.targets()[0]!.healthy;
  pool.stop();
  await up.close();
  assert.ok(healthy, 'a target answering 200 to its checks was marked unhealthy because no status can pass');
});

test('healthCheck.statuses: [] is a RangeError; outlier.statuses: [] stays valid (no status is a failure, only errors count)', () => {
  assert.throws(
    () => balance({ targets, healthCheck: { path: '/health', statuses: [] } }),
    (error: Error) => error instanceof RangeError && error.message.includes('healthCheck.statuses'),
  );
  balance({ targets, outlier: { statuses: [] } }).stop();
});

test('outlier.statuses: [] (only errors count): a target answering 503 is not ejected', async () => {
  const down = await startUpstream((_req, res) => {
    res.statusCode = 503;
    res.end('down');
  });
  const pool = balance({ targets: [down.url], outlier: { statuses: [], consecutiveFailures: 1 } });
  const served = await serveRelay(createRelay({ targetBaseUrl: down.url, stages: [pool] }));
  try {
    for (let i = 0; i < 3; i++) assert.is((await fetchRaw(served.url)).status, 503);
    assert.is(pool.targets()[0]!.ejections, 0);
  } finally {
    await served.close();
    await down.close();
  }
});

test.run();
