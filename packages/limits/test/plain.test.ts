// createLimiter() and rateLimit() are one implementation: one table of cases, run both ways.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientInfo, stageContext, type ClientFacts, type ProxyRequest } from '@relay/core';
import { createLimiter, rateLimit } from '../src/index.js';

interface Case {
  name: string;
  options: { points: number; duration: number; burst?: number; name?: string };
  requests: number;
  /** For each request: allowed, and the RateLimit / Retry-After values. */
  expected: Array<[allowed: boolean, ratelimit: string, retryAfter?: string]>;
}

const cases: Case[] = [
  {
    name: 'three per minute',
    options: { points: 3, duration: 60_000 },
    requests: 4,
    expected: [
      [true, '"default";r=2;t=20'],
      [true, '"default";r=1;t=40'],
      [true, '"default";r=0;t=60'],
      [false, '"default";r=0;t=60', '20'],
    ],
  },
  {
    name: 'a burst of 4 over 1 per 10 s, named',
    options: { points: 1, duration: 10_000, burst: 4, name: 'api' },
    requests: 5,
    expected: [
      [true, '"api";r=3;t=10'],
      [true, '"api";r=2;t=20'],
      [true, '"api";r=1;t=30'],
      [true, '"api";r=0;t=40'],
      [false, '"api";r=0;t=40', '10'],
    ],
  },
  { name: 'a burst of 1', options: { points: 10, duration: 60_000, burst: 1 }, requests: 2, expected: [[true, '"default";r=0;t=6'], [false, '"default";r=0;t=6', '6']] },
];

function request(): ProxyRequest {
  const client = new ClientInfo({ address: '203.0.113.7', scheme: 'https', host: 'gw', mountPath: '', originalUrl: '/x' } as ClientFacts);
  return { method: 'GET', path: '/x', headers: {}, body: null, replayBody: null, attempt: 1, client };
}

for (const { name, options, requests, expected } of cases) {
  test(`${name}: the stage and createLimiter agree`, async () => {
    const handler = rateLimit(options).wrap(async () => ({ status: 200, statusMessage: '', headers: {}, body: null }), stageContext());
    const limiter = createLimiter(options);
    for (let i = 0; i < requests; i++) {
      const [allowed, ratelimit, retryAfter] = expected[i]!;
      const response = await handler(request());
      const decision = await limiter.consume('203.0.113.7');
      const headers = limiter.headers(decision);
      assert.is(response.status === 200, allowed, `stage, request ${i + 1}`);
      assert.is(decision.allowed, allowed, `createLimiter, request ${i + 1}`);
      assert.is(response.headers.ratelimit, ratelimit);
      assert.is(headers.ratelimit, ratelimit);
      assert.is(response.headers['ratelimit-policy'], headers['ratelimit-policy']);
      assert.is(response.headers['retry-after'], retryAfter);
      assert.is(headers['retry-after'], retryAfter);
    }
  });
}

test('the same options are refused the same way', () => {
  for (const bad of [{ points: 0, duration: 1 }, { points: 1, duration: -1 }, { points: 1, duration: 1, burst: 0.5 }, { points: 1, duration: 1, name: 'a b' }]) {
    const stageError = (() => {
      try {
        rateLimit(bad);
      } catch (error) {
        return (error as Error).message.replace('rateLimit', '');
      }
      return 'accepted';
    })();
    assert.throws(() => createLimiter(bad), (error: Error) => error.message.replace('createLimiter', '') === stageError);
  }
});

test.run();
