import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { balance, type TargetEvent } from '../src/index.js';
import { countBy, load, named } from './helpers.js';

test('setTargets under load drops nothing: attempts in flight finish on their old target, new ones go to the new list', async () => {
  const [a, b, c] = await Promise.all([named('a', 5), named('b', 5), named('c', 5)]);
  const pool = balance({ targets: [a.url, b.url] });
  const served = await serveRelay(createRelay({ targetBaseUrl: a.url, stages: [pool] }));
  const running = load(served.url, 1500, 30);
  await waitFor(() => a.requests.length > 100, 10_000);
  pool.setTargets([b.url, c.url]);
  const aAtSwitch = a.requests.length;
  await waitFor(() => c.requests.length > 100, 10_000);
  pool.setTargets([{ url: c.url, weight: 3 }]);
  const bAtSwitch = b.requests.length;
  const hits = await running;
  assert.equal(hits.filter((hit) => hit.status !== 200).length, 0, 'no failed request');
  assert.ok(a.requests.length - aAtSwitch <= 30, 'a got at most the attempts already picked');
  assert.ok(b.requests.length - bAtSwitch <= 30);
  assert.ok(countBy(hits).c! > 100);
  assert.equal(pool.targets().map((t) => [t.url, t.weight]), [[c.url, 3]]);
  await served.close();
  await Promise.all([a, b, c].map((up) => up.close()));
});

test('an empty pool answers 503 without an address; a target list is checked', async () => {
  const pool = balance({ targets: [] });
  const up = await named('x');
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [pool] }));
  const answer = await fetchRaw(served.url);
  assert.is(answer.status, 503);
  assert.match(answer.text, /ERR_NO_TARGET/);
  assert.throws(() => pool.setTargets(['http://a:1/base']), /has a path/);
  assert.throws(() => pool.setTargets(['http://a:1', 'http://a:1']), /listed twice/);
  assert.throws(() => pool.setTargets([{ url: 'http://a:1', wieght: 2 } as never]), /unknown option "wieght" \(did you mean "weight"/);
  assert.throws(() => pool.setTargets([{ url: 'http://a:1', weight: 0 }]), /weight must be a whole number ≥ 1/);
  await served.close();
  await up.close();
});

test('DNS targets: every address of a name is a target sent Host: name:port; a changed record is picked up', async () => {
  const up = await startUpstream((req, res) => res.end(String(req.headers.host)));
  let records = ['127.0.0.1'];
  const asked: string[] = [];
  const events: TargetEvent[] = [];
  const pool = balance({
    targets: [{ dns: `http://app.internal:${up.port}`, interval: 50 }],
    resolve: async (name) => {
      asked.push(name);
      return records;
    },
    onStateChange: (event) => events.push(event),
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [pool] }));
  const answer = await fetchRaw(served.url);
  assert.equal([answer.status, answer.text], [200, `app.internal:${up.port}`], 'the first request waited for the first lookup');
  assert.is(asked[0], 'app.internal');
  records = ['127.0.0.1', '::1'];
  assert.ok(await waitFor(() => pool.targets().length === 2, 5_000));
  assert.equal(pool.targets().map((t) => t.url), [`http://127.0.0.1:${up.port}`, `http://[::1]:${up.port}`]);
  records = ['::1'];
  assert.ok(await waitFor(() => pool.targets().length === 1, 5_000));
  assert.equal(events.map((e) => e.change), ['added', 'added', 'removed']);
  pool.stop();
  await served.close();
  await up.close();
});

test('adopt carries a DNS target\'s addresses and their state to a pool listing the same name: kept when its first lookup fails, refreshed when it answers', async () => {
  const up = await startUpstream((req, res) => res.end(String(req.headers.host)));
  const spec = { dns: `http://app.internal:${up.port}`, interval: 60_000 };
  const old = balance({ targets: [spec], resolve: async () => ['127.0.0.1'], healthCheck: { path: '/health', interval: 60_000 } });
  await old.start();
  assert.equal(old.targets().map((t) => [t.url, t.dns]), [[`http://127.0.0.1:${up.port}`, `http://app.internal:${up.port}`]]);
  const states = old.targets().map((t) => ({ ...t, healthy: false }));
  old.stop();
  let answer: readonly string[] | null = null;
  const resolve = async (): Promise<readonly string[]> => {
    if (answer === null) throw new Error('SERVFAIL');
    return answer;
  };
  const next = balance({ targets: [spec, 'http://127.0.0.1:1'], resolve, healthCheck: { path: '/health', interval: 60_000 } });
  next.adopt(states);
  await next.start();
  assert.equal(
    next.targets().map((t) => [t.url, t.healthy]),
    [['http://127.0.0.1:1', true], [`http://127.0.0.1:${up.port}`, false]],
    'the failed lookup kept the address the old pool had, with its verdict',
  );
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, stages: [balance({ targets: [spec], resolve })] }));
  assert.is((await fetchRaw(served.url)).status, 503, 'a pool that adopted nothing has no address after a failed lookup');
  await served.close();
  next.stop();
  answer = ['127.0.0.1'];
  const again = balance({ targets: [spec], resolve, healthCheck: { path: '/health', interval: 60_000 } });
  again.adopt(states);
  await again.start();
  assert.equal(again.targets().map((t) => [t.url, t.healthy]), [[`http://127.0.0.1:${up.port}`, false]], 'the same address found again keeps its adopted state');
  again.stop();
  await up.close();
});

test('DNS targets with the system resolver: localhost resolves to its loopback address(es)', async () => {
  const up = await startUpstream();
  const pool = balance({ targets: [{ dns: `http://localhost:${up.port}` }] });
  await pool.start();
  const urls = pool.targets().map((t) => t.url);
  assert.ok(urls.includes(`http://127.0.0.1:${up.port}`), urls.join(' '));
  pool.stop();
  await up.close();
});

test('a unix: socket target beside a TCP one, with the relay’s path prefix', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'relay-balance-'));
  const socketPath = join(dir, 'app.sock');
  const overSocket = createServer((req, res) => res.setHeader('x-upstream', 'unix').end(req.url));
  await new Promise<void>((resolve) => overSocket.listen(socketPath, resolve));
  const tcp = await named('tcp');
  const pool = balance({ targets: [`unix:${socketPath}`, tcp.url] });
  const served = await serveRelay(createRelay({ targetBaseUrl: `${tcp.url}/v1`, stages: [pool] }));
  const hits = await load(`${served.url}/items`, 10, 2);
  assert.equal(countBy(hits), { unix: 5, tcp: 5 });
  assert.is((await fetchRaw(`${served.url}/items`)).text, '/v1/items');
  await served.close();
  await tcp.close();
  await new Promise<void>((resolve) => overSocket.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

test('options are checked when the stage is built, naming the option', () => {
  assert.throws(() => balance({ targets: [], stratgy: 'hash' } as never), /unknown option "stratgy" \(did you mean "strategy"/);
  assert.throws(() => balance({ targets: [], strategy: 'random' as never }), /strategy must be one of/);
  assert.throws(() => balance({ targets: [], hashKey: 'client' }), /hashKey needs strategy: 'hash'/);
  assert.throws(() => balance({ targets: [], strategy: 'hash', hashKey: { header: 'bad header' } }), /hashKey must be/);
  assert.throws(() => balance({ targets: [], outlier: { consecutiveFailure: 3 } as never }), /did you mean "consecutiveFailures"/);
  assert.throws(() => balance({ targets: [], healthCheck: { path: 'health' } }), /healthCheck.path/);
  assert.throws(() => balance({ targets: [], circuit: {} as never }), /circuit.maxRequests is required/);
  assert.throws(() => balance({ targets: [], outlier: { maxEjectionPercent: 120 } }), /0 to 100/);
  assert.throws(() => balance({ targets: ['ftp://x'] }), /targets\[0\]/);
});

test.run();
