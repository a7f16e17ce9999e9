// Several rate limits on one route, as nginx's several limit_req: a request is charged by every limit only once all of
// them let it through (ngx_http_limit_req_handler charges its zones after the last one passed). A limit that takes a
// token and then sees a limit further in refuse the request (its 429, or the 503 of its store failing closed) gives the
// token back. Without that, one API key its own limit refuses drains the route's global bucket and every key is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientInfo, createRelay, stageContext, type ClientFacts, type ProxyRequest, type ProxyResponse } from '@relay/core';
import { delay, fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { memoryStore, rateLimit, refundToken, takeToken, type Bucket, type Decision, type LimitStore } from '../src/index.js';
import { headers, refundAfterRefill, slow } from './refund-helpers.js';

const key = (value: string) => ({ headers: { 'x-api-key': value } });

async function statuses(url: string, count: number, options: Parameters<typeof fetchRaw>[1]): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < count; i++) result.push((await fetchRaw(url, options)).status);
  return result;
}

/** A store whose every call fails, as a Redis that is down. */
const brokenStore: LimitStore = {
  kind: 'broken',
  bind: () => ({ take: () => Promise.reject(new Error('store down')) }),
};

test('global then per key: requests the per-key limit refuses spend nothing of the global one; another key still gets through', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        rateLimit({ name: 'global', key: 'route', points: 5, duration: 60_000 }),
        rateLimit({ name: 'per-key', key: { header: 'x-api-key' }, points: 2, duration: 60_000 }),
      ],
    }),
  );
  try {
    assert.equal(await statuses(served.url, 10, key('abuser')), [200, 200, 429, 429, 429, 429, 429, 429, 429, 429], 'the abusive key gets its 2');
    const other = await fetchRaw(served.url, key('honest'));
    assert.is(other.status, 200, 'the route let 2 requests through of its 5: another key is not refused');
    assert.match(String(other.headers.ratelimit), /"global";r=2;/, 'global: 5 - 2 let through - this one');
    assert.is(upstream.requests.length, 3);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('per key then global: a request the global limit refuses spends nothing of its key\'s bucket, and its 429 says so', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        rateLimit({ name: 'per-key', key: { header: 'x-api-key' }, points: 3, duration: 60_000 }),
        rateLimit({ name: 'global', key: 'route', points: 1, duration: 60_000 }),
      ],
    }),
  );
  try {
    assert.is((await fetchRaw(served.url, key('b'))).status, 200, 'b takes the one global token');
    const refused = await fetchRaw(served.url, key('a'));
    assert.is(refused.status, 429, 'a is refused by the global limit');
    assert.is(refused.headers.ratelimit, '"global";r=0;t=60, "per-key";r=3;t=0', 'a\'s own bucket is untouched: it was not let through');
    assert.equal(await statuses(served.url, 5, key('a')), [429, 429, 429, 429, 429]);
    // After a global outage (the global bucket empty), a's key must not be locked out by the refusals it met.
    const ownBucket = await fetchRaw(served.url, key('a'));
    assert.match(String(ownBucket.headers.ratelimit), /"per-key";r=3;/, 'six refusals later, still 3 of 3');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('three limits: the innermost refuses, both outer ones give their token back', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        rateLimit({ name: 'outer', key: 'route', points: 10, duration: 60_000 }),
        rateLimit({ name: 'middle', key: 'route', points: 10, duration: 60_000 }),
        rateLimit({ name: 'inner', key: 'route', points: 1, duration: 60_000 }),
      ],
    }),
  );
  try {
    assert.equal(await statuses(served.url, 4, {}), [200, 429, 429, 429]);
    const last = await fetchRaw(served.url);
    assert.is(last.headers.ratelimit, '"inner";r=0;t=60, "middle";r=9;t=6, "outer";r=9;t=6', 'each outer limit: one token spent, by the request let through');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('a limit further in whose store fails closed (503 ERR_LIMIT_STORE) refuses the request: the outer token is given back', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      logger,
      stages: [
        rateLimit({ name: 'outer', key: 'route', points: 3, duration: 60_000 }),
        rateLimit({ name: 'shared', key: 'route', points: 100, duration: 60_000, store: brokenStore, failOpen: false }),
      ],
    }),
  );
  try {
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await fetchRaw(served.url));
    assert.equal(answers.map((answer) => answer.status), [503, 503, 503, 503, 503]);
    assert.match(answers[4]!.text, /ERR_LIMIT_STORE/);
    assert.is(answers[4]!.headers.ratelimit, '"outer";r=3;t=0', 'five refusals, the outer bucket still full');
    assert.is(upstream.requests.length, 0);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('what is charged stays charged: the upstream\'s own 429 and a relay error are answers to a request let through', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(429, { 'retry-after': '1' });
    res.end('busy');
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ name: 'api', key: 'route', points: 3, duration: 60_000 })] }));
  try {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await fetchRaw(served.url));
    assert.equal(answers.map((answer) => answer.status), [429, 429, 429]);
    assert.is(answers[2]!.headers.ratelimit, '"api";r=0;t=60');
    assert.is((await fetchRaw(served.url)).text, '429 Too Many Requests: the rate limit is exceeded, retry later (ERR_RATE_LIMITED)\n', 'the 4th: our own limit');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('an outer limit without headers, and one in dry run, give their token back too', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      logger,
      stages: [
        rateLimit({ name: 'trial', key: 'route', points: 3, duration: 60_000, dryRun: true }),
        rateLimit({ name: 'quiet', key: 'route', points: 2, duration: 60_000, headers: false }),
        rateLimit({ name: 'per-key', key: { header: 'x-api-key' }, points: 1, duration: 60_000 }),
      ],
    }),
  );
  try {
    assert.equal(await statuses(served.url, 4, key('a')), [200, 429, 429, 429], 'per key: 1');
    assert.is((await fetchRaw(served.url, key('b'))).status, 200, 'quiet: a and b, 2 of 2');
    const refused = await fetchRaw(served.url, key('c'));
    assert.is(refused.status, 429, 'quiet is empty now');
    assert.is(refused.headers.ratelimit, undefined, 'quiet adds no fields, the dry run none either');
    assert.is(
      logger.lines.filter((line) => line.message.includes('dry run')).length,
      0,
      'the dry run was charged by a and b only, of its 3: it would have refused none of these',
    );
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('a store without refund keeps the token spent; a refund that fails is logged, and the 429 is answered all the same', async () => {
  const inner = rateLimit({ name: 'inner', key: 'route', points: 1, duration: 60_000 });
  let taken = 0;
  const counting = (refund?: Bucket['refund']): LimitStore => ({
    kind: 'counting',
    bind: () => ({
      take: (): Decision => ({ allowed: true, remaining: 5 - ++taken, retryAfterMs: 0, resetMs: 1000 * taken }),
      ...(refund === undefined ? {} : { refund }),
    }),
  });
  const ok = async (): Promise<ProxyResponse> => ({ status: 200, statusMessage: '', headers: {}, body: null });
  // Cast: core is gaining client facts (the local port) this test does not need.
  const request = (): ProxyRequest => ({
    method: 'GET', path: '/', headers: {}, body: null, replayBody: null, attempt: 1,
    client: new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/' } as ClientFacts),
  });
  const noRefund = rateLimit({ name: 'outer', key: 'route', points: 5, duration: 5_000, store: counting() }).wrap(inner.wrap(ok, stageContext()), stageContext());
  assert.is((await noRefund(request())).status, 200);
  const kept = await noRefund(request());
  assert.is(kept.status, 429);
  assert.is(kept.headers.ratelimit, '"inner";r=0;t=60, "outer";r=3;t=2', 'the outer store counted both: its item says so');

  const logger = memoryLogger();
  const failing = rateLimit({ name: 'outer', key: 'route', points: 5, duration: 5_000, store: counting(() => Promise.reject(new Error('gone'))) });
  const answered = await failing.wrap(inner.wrap(ok, stageContext()), stageContext({ logger }))(request());
  assert.is(answered.status, 429);
  await waitFor(() => logger.lines.some((line) => line.message.includes('not given back')));
  const line = logger.lines.find((each) => each.message.includes('not given back'))!;
  assert.is(line.level, 'error');
  assert.equal([line.fields.limit, line.fields.store, line.fields.error], ['outer', 'counting', 'gone']);
});

test('refundToken and memoryStore refund: the bucket as it was before the take; other requests\' tokens stay taken', () => {
  const policy = { name: 'p', points: 4, duration: 1000, burst: 4 };
  const first = takeToken(policy, 0, 10_000);
  assert.is(refundToken(policy, first.tat, first.tat, 10_000), null, 'back to full: the key can be forgotten');
  const second = takeToken(policy, first.tat, 10_000);
  assert.is(refundToken(policy, second.tat, second.tat, 10_000), first.tat);
  assert.is(refundToken(policy, second.tat, second.tat, 10_200), first.tat, 'a refund later on: the same state, refilled since as it would have been');
  assert.is(refundToken(policy, second.tat, second.tat, 10_300), null, 'by then full again without that token');

  const bucket = memoryStore().bind(policy);
  const take = () => bucket.take('k') as Decision;
  const [a, b, c] = [take(), take(), take()];
  assert.equal([a.remaining, b.remaining, c.remaining], [3, 2, 1]);
  bucket.refund!('k', c);
  const again = take();
  assert.is(again.remaining, 1, 'one given back, taken again');
  assert.is(take().remaining, 0);
  assert.is(take().allowed, false);
  bucket.refund!('k', again);
  assert.is(take().allowed, true, 'a refund after a refusal elsewhere makes room for exactly one');
  bucket.refund!('never-seen', a);
  assert.is(take().allowed, false, 'a refund for a key it does not hold (or another key\'s decision) changes nothing');
  assert.is((bucket.take('never-seen') as Decision).remaining, 3);
});

test('refundToken gives back only what the refused request still owes: nothing once the refill passed its token', () => {
  const policy = { name: 'p', points: 4, duration: 1000, burst: 1 };
  const a = takeToken(policy, 0, 10_000);
  assert.is(a.tat, 10_250);
  assert.is(refundToken(policy, a.tat, a.tat, 10_100), null, 'still owed: given back, the bucket full again');
  // A's token refilled at 10 250; B took the refilled one at 10 260.
  const b = takeToken(policy, a.tat, 10_260);
  assert.is(b.decision.allowed, true);
  assert.is(refundToken(policy, b.tat, a.tat, 10_300), b.tat, 'A owes nothing: B\'s token stays taken');
  const owedPart = takeToken(policy, 0, 20_000);
  assert.is(refundToken(policy, owedPart.tat + 100, owedPart.tat, 20_200), owedPart.tat + 100 - 50, 'only the 50 ms still owed');
});

test('memoryStore refund of an entry forgotten since (maxKeys) leaves the new entry of that key alone', () => {
  const bucket = memoryStore({ maxKeys: 2 }).bind({ name: 'p', points: 1, duration: 600_000, burst: 1 });
  const a = bucket.take('k') as Decision;
  bucket.take('j');
  bucket.take('m'); // the store is full: k, the oldest, goes
  const b = bucket.take('k') as Decision;
  assert.is(b.allowed, true, 'a fresh bucket for k');
  assert.is.not(a.generation, b.generation);
  bucket.refund!('k', a);
  assert.is((bucket.take('k') as Decision).allowed, false, 'A\'s refund did not give back B\'s token');
  bucket.refund!('k', b);
  assert.is((bucket.take('k') as Decision).allowed, true, 'B\'s own refund does');
});

test('a refund that comes after the bucket refilled does not give back the token of a request let through since (memory store)', async () => {
  await refundAfterRefill(undefined);
});

test('a refund for a key the memory store evicted (maxKeys) does not give back the token of the request that took the key since', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        rateLimit({ name: 'per-client', key: { header: 'x-client' }, points: 1, duration: 600_000, store: memoryStore({ maxKeys: 2 }) }),
        slow,
        rateLimit({ name: 'inner', key: { header: 'x-inner' }, points: 1, duration: 600_000 }),
      ],
    }),
  );
  try {
    assert.is((await fetchRaw(served.url, headers('x', 'blocked'))).status, 200, 'inner key "blocked" spends its one token');
    // A: client k, let through by per-client, held 400 ms, then refused by the inner limit.
    const a = fetchRaw(served.url, headers('k', 'blocked', 400));
    await delay(100);
    // Two other clients fill the store: k (the oldest) is evicted.
    assert.is((await fetchRaw(served.url, headers('j', 'j-1'))).status, 200);
    assert.is((await fetchRaw(served.url, headers('m', 'm-1'))).status, 200);
    // B: client k again, a fresh bucket: let through, its one token taken.
    assert.is((await fetchRaw(served.url, headers('k', 'b-1'))).status, 200);
    assert.is((await a).status, 429);
    const c = await fetchRaw(served.url, headers('k', 'c-1'));
    assert.is(c.status, 429, 'A\'s refund must not give back B\'s token: k has 1 per 10 minutes and B took it');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
