// Review s39 (issue 21, "several limits on one route (per key and global)"). A request that one limit refuses must
// not spend a token of another: nginx's several limit_req check every zone first and charge them only when all pass
// (ngx_http_limit_req_handler: a NGX_BUSY zone calls ngx_http_limit_req_unlock on the zones before it, which only
// drops their lock count; ngx_http_limit_req_account charges them when the request is let through). The README says
// the opposite "as with nginx's several limit_req". With the global limit first, one abusive API key that its own
// limit refuses drains the route's global bucket and every other key is refused: a per-key limit meant to contain
// one client lets it deny service to all.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { rateLimit } from '../src/index.js';

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
    const abusive: number[] = [];
    for (let i = 0; i < 10; i++) abusive.push((await fetchRaw(served.url, { headers: { 'x-api-key': 'abuser' } })).status);
    assert.equal(abusive, [200, 200, 429, 429, 429, 429, 429, 429, 429, 429], 'the abusive key gets its 2');
    const other = await fetchRaw(served.url, { headers: { 'x-api-key': 'honest' } });
    assert.is(other.status, 200, 'the route let 2 requests through of its 5: another key is not refused');
    assert.match(String(other.headers.ratelimit), /"global";r=2;/, 'global: 5 - 2 let through - this one');
    assert.is(upstream.requests.length, 3);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('per key then global: requests the global limit refuses spend nothing of their key\'s bucket', async () => {
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
    assert.is((await fetchRaw(served.url, { headers: { 'x-api-key': 'b' } })).status, 200, 'b takes the one global token');
    const refused = await fetchRaw(served.url, { headers: { 'x-api-key': 'a' } });
    assert.is(refused.status, 429, 'a is refused by the global limit');
    assert.match(String(refused.headers.ratelimit), /"per-key";r=3;/, 'a\'s own bucket is untouched: it was not let through');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
