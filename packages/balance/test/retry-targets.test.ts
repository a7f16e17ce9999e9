import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { retry } from '@relay/retry';
import { serveRelay, startUpstream, type Upstream } from '@relay/testkit';
import { balance, type BalanceOptions } from '../src/index.js';
import { countBy, load } from './helpers.js';

/** Every attempt the upstreams saw, in arrival order: the client request (its `x-request` header) and who got it. */
type Log = Array<{ id: string; name: string }>;

/** An upstream that answers `status` with its own name, and logs each attempt. */
function answering(name: string, status: number, log: Log): Promise<Upstream> {
  return startUpstream((req, res) => {
    log.push({ id: String(req.headers['x-request']), name });
    res.statusCode = status;
    res.setHeader('x-upstream', name);
    res.end(name);
  });
}

/** Which upstreams, in order, the attempts of each client request went to. */
function attemptsByRequest(log: Log): Map<string, string[]> {
  const byRequest = new Map<string, string[]>();
  for (const { id, name } of log) byRequest.set(id, [...(byRequest.get(id) ?? []), name]);
  return byRequest;
}

const strategies: Array<Pick<BalanceOptions, 'strategy' | 'hashKey'>> = [
  { strategy: 'round-robin' },
  { strategy: 'least-request' },
  { strategy: 'hash', hashKey: { header: 'x-request' } },
];

test('retries go to a target no earlier attempt tried: a and b fail, attempt 3 goes to c, never back to a', async () => {
  for (const options of strategies) {
    const log: Log = [];
    const a = await answering('a', 502, log);
    const b = await answering('b', 503, log);
    const c = await answering('c', 200, log);
    // a weighs most: the plain pick of attempt 3 among a and c is a more often than not.
    const pool = balance({ ...options, targets: [{ url: a.url, weight: 4 }, b.url, c.url], outlier: false });
    const served = await serveRelay(createRelay({ targetBaseUrl: c.url, stages: [retry({ maxRetries: 2, backoffFactor: 1 }), pool] }));
    const hits = await load(served.url, 60, 3, (index) => ({ 'x-request': `r${index}` }));
    assert.equal(countBy(hits), { c: 60 }, `${options.strategy}: every client request ended on c`);
    assert.ok(hits.every((hit) => hit.status === 200), options.strategy);
    for (const [id, names] of attemptsByRequest(log)) {
      assert.is(new Set(names).size, names.length, `${options.strategy}: ${id} went to ${names.join(', ')}`);
    }
    assert.ok(a.requests.length > 0 && b.requests.length > 0, `${options.strategy}: the failing targets were tried`);
    await served.close();
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

test('a target whose answer was retried is avoided whatever the status (a 429 retried on request), not only a 5xx', async () => {
  const log: Log = [];
  const a = await answering('a', 429, log);
  const b = await answering('b', 200, log);
  const pool = balance({ targets: [a.url, b.url], strategy: 'hash', hashKey: { header: 'x-request' }, outlier: false });
  const served = await serveRelay(createRelay({ targetBaseUrl: b.url, stages: [retry({ maxRetries: 1, backoffFactor: 1, statuses: [429] }), pool] }));
  const hits = await load(served.url, 40, 4, (index) => ({ 'x-request': `r${index}` }));
  assert.equal(countBy(hits), { b: 40 }, 'keys hashed to a were retried on b');
  assert.ok(a.requests.length > 0, 'some keys hashed to a first');
  await served.close();
  await Promise.all([a.close(), b.close()]);
});

test('once every target was tried, a retry is picked among all of them again (Envoy falls back the same way)', async () => {
  const log: Log = [];
  const a = await answering('a', 502, log);
  const b = await answering('b', 502, log);
  const pool = balance({ targets: [a.url, b.url], outlier: false });
  const served = await serveRelay(createRelay({ targetBaseUrl: a.url, stages: [retry({ maxRetries: 3, backoffFactor: 1 }), pool] }));
  const hits = await load(served.url, 10, 2, (index) => ({ 'x-request': `r${index}` }));
  assert.ok(hits.every((hit) => hit.status === 502), 'the last attempt answer');
  const byRequest = attemptsByRequest(log);
  assert.is(byRequest.size, 10);
  for (const [id, names] of byRequest) {
    assert.is(names.length, 4, `${id}: four attempts, none refused for want of an untried target`);
    assert.equal(new Set(names.slice(0, 2)).size, 2, `${id}: the first two went to both targets (${names.join(', ')})`);
  }
  await served.close();
  await Promise.all([a.close(), b.close()]);
});

test('a stage outside retry() learns which member answered: the response names its target (ProxyResponse.target)', async () => {
  const log: Log = [];
  const a = await answering('a', 503, log);
  const b = await answering('b', 200, log);
  const answeredBy: string[] = [];
  const outer: Stage = {
    name: 'outer',
    wrap: (next) => async (request) => {
      const response = await next(request);
      answeredBy.push(response.target?.origin ?? 'none');
      return response;
    },
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: a.url, stages: [outer, retry({ maxRetries: 1 }), balance({ targets: [a.url, b.url], strategy: 'round-robin' })] }));
  try {
    await load(served.url, 1, 1, () => ({ 'x-request': 'one' }));
    assert.equal(answeredBy, [new URL(b.url).origin], 'the answering member, though retry() sent a copy of the request');
  } finally {
    await served.close();
    await a.close();
    await b.close();
  }
});

test.run();
