// The first request to a pool of DNS names waits for their first lookups: at most the relay's
// timeout.pool, and no longer than its client stays (then 503 ERR_NO_TARGET with Retry-After). Each
// lookup is bounded too: one that never settles is a failed lookup after DnsWatch's timeout.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, memoryLogger, sendRaw, serveRelay, waitFor } from '@relay/testkit';
import { DnsWatch } from '../src/dns.js';
import { balance } from '../src/index.js';
import { parseSpecs } from '../src/targets.js';
import { named } from './helpers.js';

const never = (): Promise<readonly string[]> => new Promise<readonly string[]>(() => {});

test('a DNS target whose first lookup never settles: the first request is answered within the relay timeouts, not held forever', async () => {
  const ok = await named('ok');
  const pool = balance({ targets: [{ dns: `http://app.internal:${new URL(ok.url).port}` }], resolve: never });
  const served = await serveRelay(createRelay({ targetBaseUrl: ok.url, timeout: { connect: 500, read: 500, pool: 500 }, stages: [pool] }));
  const answer = fetchRaw(served.url).then(
    (response) => response,
    () => -1,
  );
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<string>((resolve) => (timer = setTimeout(resolve, 5_000, 'no answer after 5 s')));
  const outcome = await Promise.race([answer.then((response) => (typeof response === 'number' ? response : response.status)), bound]);
  clearTimeout(timer);
  pool.stop();
  await served.close();
  const response = await answer;
  await ok.close();
  assert.type(outcome, 'number', String(outcome));
  assert.ok((outcome as number) >= 500, `a 5xx (503/504), got ${String(outcome)}`);
  assert.is(outcome, 503);
  assert.ok(typeof response !== 'number');
  assert.is(response.headers['retry-after'], '1');
  assert.match(response.text, /ERR_NO_TARGET/);
  assert.not.match(response.text, /app\.internal|127\.0\.0\.1/, 'the body names no address');
});

test('timeout.pool 0 (no bound): a client that leaves while the first lookup runs releases its request', async () => {
  const ok = await named('ok');
  const pool = balance({ targets: [{ dns: `http://app.internal:${new URL(ok.url).port}` }], resolve: never });
  const served = await serveRelay(createRelay({ targetBaseUrl: ok.url, timeout: { pool: 0 }, stages: [pool] }));
  try {
    // sendRaw closes its connection after 300 ms without an answer: the client left.
    const raw = await sendRaw(served.port, 'GET / HTTP/1.1\r\nHost: relay\r\n\r\n', 300);
    assert.is(raw, '', 'no answer while the lookup runs');
    // Well within DnsWatch's own lookup timeout (10 s): the client's leaving ended the wait.
    assert.ok(await waitFor(() => served.relay.inFlight === 0, 3_000), `the request is still held after its client left (${served.relay.inFlight} in flight)`);
  } finally {
    pool.stop();
    await served.close();
    await ok.close();
  }
});

test('DnsWatch: a lookup that never settles is a failed lookup after the lookup timeout (start() resolves, logged)', async () => {
  const logger = memoryLogger();
  const entry = parseSpecs([{ dns: 'http://app.internal:8000' }]).dns[0]!;
  const watch = new DnsWatch(entry, never, () => {}, () => logger, 100);
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<string>((resolve) => (timer = setTimeout(resolve, 3_000, 'still waiting after 3 s')));
  const first = await Promise.race([watch.start().then(() => 'looked'), bound]);
  clearTimeout(timer);
  const took = Date.now() - started;
  watch.stop();
  assert.is(first, 'looked');
  assert.ok(took < 2_000, `took ${took} ms`);
  assert.ok(watch.ready, 'the watch knows it has no address');
  assert.equal(watch.members, []);
  const warned = logger.lines.find((line) => line.message.startsWith('balance: DNS lookup failed'));
  assert.ok(warned !== undefined, JSON.stringify(logger.lines));
  assert.match(String(warned!.fields.error), /no answer within 100 ms/);
});

test('DnsWatch: an answer within the lookup timeout is used as before', async () => {
  const entry = parseSpecs([{ dns: 'http://app.internal:8000' }]).dns[0]!;
  let changes = 0;
  const watch = new DnsWatch(entry, async () => ['127.0.0.1'], () => changes++, () => memoryLogger(), 1_000);
  await watch.start();
  watch.stop();
  assert.equal(
    watch.members.map((member) => member.url),
    ['http://127.0.0.1:8000'],
  );
  assert.is(changes, 1);
});

test.run();
