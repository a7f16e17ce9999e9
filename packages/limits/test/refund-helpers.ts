// Shared by several-limits.test.ts and redis.test.ts: a refused request's refund against a bucket
// that refilled while the request was held.
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { delay, fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { rateLimit, type LimitStore } from '../src/index.js';

/** A stage that holds a request carrying `x-slow: <ms>` that long before the stages after it (an auth call, a Redis-backed limit). */
export const slow: Stage = {
  name: 'slow',
  wrap: (next) => async (request) => {
    const wait = Number(request.headers['x-slow'] ?? 0);
    if (wait > 0) await delay(wait);
    return next(request);
  },
};

export const headers = (client: string, inner: string, slowMs = 0) => ({
  headers: { 'x-client': client, 'x-inner': inner, ...(slowMs > 0 ? { 'x-slow': String(slowMs) } : {}) },
});

/** A's token refilled while A was held, B took the refilled token, then A's refusal gives a token back: C must still be refused. */
export async function refundAfterRefill(store: LimitStore | undefined): Promise<void> {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        // One request per 2 s per client, no burst beyond one.
        rateLimit({ name: 'per-client', key: { header: 'x-client' }, points: 1, duration: 2_000, ...(store === undefined ? {} : { store }) }),
        slow,
        rateLimit({ name: 'inner', key: { header: 'x-inner' }, points: 1, duration: 600_000 }),
      ],
    }),
  );
  try {
    assert.is((await fetchRaw(served.url, headers('other', 'blocked'))).status, 200, 'inner key "blocked" spends its one token');
    // A: let through by per-client at t0, held 2.6 s, then refused by the inner limit.
    const a = fetchRaw(served.url, headers('c', 'blocked', 2_600));
    await delay(2_200);
    // B at t0 + 2.2 s: per-client has refilled since A (2 s); B takes that token and is let through.
    const b = await fetchRaw(served.url, headers('c', 'b-1'));
    assert.is(b.status, 200);
    assert.is((await a).status, 429, 'A refused by the inner limit: its per-client token is given back');
    // C right after A's refusal (t0 + 2.6 s, 0.4 s after B): per-client allows 1 per 2 s, B holds it.
    const c = await fetchRaw(served.url, headers('c', 'c-1'));
    assert.is(c.status, 429, 'A\'s token had been refilled already: refunding it again gave back B\'s token (2 requests in 0.4 s under 1 per 2 s)');
  } finally {
    await served.close();
    await upstream.close();
  }
}
