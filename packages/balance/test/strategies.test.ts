import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { serveRelay } from '@relay/testkit';
import { balance } from '../src/index.js';
import { countBy, load, named } from './helpers.js';

test('weighted round robin: weights 1:2:3 give a 1:2:3 split of 3 000 requests (±5 %)', async () => {
  const ups = await Promise.all(['a', 'b', 'c'].map((name) => named(name)));
  const pool = balance({ targets: ups.map((up, index) => ({ url: up.url, weight: index + 1 })) });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [pool] }));
  const hits = await load(served.url, 3000, 20);
  const counts = countBy(hits);
  assert.ok(hits.every((hit) => hit.status === 200));
  for (const [name, share] of [['a', 500], ['b', 1000], ['c', 1500]] as const) {
    assert.ok(Math.abs(counts[name]! - share) <= share * 0.05, `${name}: ${counts[name]} of an expected ${share}`);
  }
  await served.close();
  await Promise.all(ups.map((up) => up.close()));
});

test('smooth round robin interleaves: weights 5:1:1 never send five in a row to the heavy target', async () => {
  const ups = await Promise.all(['a', 'b', 'c'].map((name) => named(name)));
  const pool = balance({ targets: ups.map((up, index) => ({ url: up.url, weight: index === 0 ? 5 : 1 })) });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [pool] }));
  const order = (await load(served.url, 7, 1)).map((hit) => hit.upstream).join('');
  assert.is(order.length, 7);
  assert.not.match(order, /aaaaa/);
  assert.equal(order.split('').sort().join(''), 'aaaaabc');
  await served.close();
  await Promise.all(ups.map((up) => up.close()));
});

test('least-request (power of two choices) sends most requests to the faster, less loaded target', async () => {
  const slow = await named('slow', 150);
  const fast = await named('fast');
  const pool = balance({ targets: [slow.url, fast.url], strategy: 'least-request' });
  const served = await serveRelay(createRelay({ targetBaseUrl: slow.url, stages: [pool] }));
  const counts = countBy(await load(served.url, 300, 8));
  // Round robin would give 150 each; P2C keeps the slow one at about one in flight.
  assert.ok(counts.fast! > 4 * (counts.slow ?? 0), JSON.stringify(counts));
  await served.close();
  await slow.close();
  await fast.close();
});

test('hash on a header: every request of a key reaches one target; a new target takes about 1/N of the keys, only to itself', async () => {
  const ups = await Promise.all(['a', 'b', 'c', 'd'].map((name) => named(name)));
  const pool = balance({ targets: ups.slice(0, 3).map((up) => up.url), strategy: 'hash', hashKey: { header: 'x-user' } });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [pool] }));
  const keys = 300;
  const where = async (): Promise<string[]> => {
    const hits = await load(served.url, keys * 3, 10, (index) => ({ 'x-user': `user-${index % keys}` }));
    const owner: string[] = [];
    hits.forEach((hit, index) => {
      const key = index % keys;
      assert.ok(owner[key] === undefined || owner[key] === hit.upstream, `user-${key} stayed on one target`);
      owner[key] = hit.upstream;
    });
    return owner;
  };
  const before = await where();
  assert.equal(Object.keys(countBy(before.map((upstream) => ({ upstream, status: 200, retryAfter: undefined })))).sort(), ['a', 'b', 'c']);
  pool.setTargets(ups.map((up) => up.url));
  const after = await where();
  const moved = before.filter((owner, key) => owner !== after[key]).length;
  assert.ok(moved > keys * 0.12 && moved < keys * 0.38, `${moved} of ${keys} keys moved (about a quarter expected)`);
  assert.ok(before.every((owner, key) => owner === after[key] || after[key] === 'd'), 'keys moved only to the new target');
  pool.setTargets([ups[0]!.url, ups[2]!.url, ups[3]!.url]);
  const left = await where();
  assert.ok(after.every((owner, key) => owner === left[key] || owner === 'b'), 'only the leaving target’s keys moved');
  await served.close();
  await Promise.all(ups.map((up) => up.close()));
});

test('hash on a cookie and on the client address', async () => {
  const ups = await Promise.all(['a', 'b', 'c'].map((name) => named(name)));
  for (const hashKey of [{ cookie: 'sid' }, 'client'] as const) {
    const pool = balance({ targets: ups.map((up) => up.url), strategy: 'hash', hashKey });
    const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [pool] }));
    const hits = await load(served.url, 40, 4, () => ({ cookie: 'theme=dark; sid=abc123' }));
    assert.is(Object.keys(countBy(hits)).length, 1, `${JSON.stringify(hashKey)}: one target for one key`);
    await served.close();
  }
  await Promise.all(ups.map((up) => up.close()));
});

test("hash on 'client' behind a trusted proxy: each forwarded client keeps its target, and the clients spread over them", async () => {
  const ups = await Promise.all(['a', 'b', 'c'].map((name) => named(name)));
  const pool = balance({ targets: ups.map((up) => up.url), strategy: 'hash', hashKey: 'client' });
  // The test client is the trusted load balancer on loopback; X-Forwarded-For names the real client.
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, trustProxy: ['loopback'], stages: [pool] }));
  try {
    const hits = await load(served.url, 240, 8, (index) => ({ 'x-forwarded-for': `203.0.113.${index % 24}` }));
    const owner = new Map<number, string>();
    hits.forEach((hit, index) => {
      const client = index % 24;
      assert.is(hit.status, 200);
      assert.is(owner.get(client) ?? hit.upstream, hit.upstream, `client ${client} stays on one target`);
      owner.set(client, hit.upstream);
    });
    // 24 clients on one target by chance: 3 × 3^-24. Before, all shared the proxy's key.
    assert.ok(new Set(owner.values()).size > 1, `24 forwarded clients all hashed to ${[...owner.values()][0]}`);
  } finally {
    await served.close();
    await Promise.all(ups.map((up) => up.close()));
  }
});

test.run();
