// Runs the relays of docs/retries.md (retries.ts) against real upstreams on 127.0.0.1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { retryingPosts, withDeadline, withRetries, withTimeouts } from './retries.js';

/** An upstream that answers 503 to every other request, starting with the first. */
async function everyOtherBusy() {
  let served = 0;
  const upstream = await startUpstream((req, res, seen) => {
    served++;
    if (served % 2 === 1) res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
    else res.end(`${req.method} ${req.url} ${seen.body.toString()}`);
  });
  return { upstream, served: () => served };
}

test('withRetries: 503 then 200, the client sees the 200 after one backoff wait; a POST is sent once', async () => {
  const { upstream, served } = await everyOtherBusy();
  const gateway = await serveRelay(withRetries(upstream.url));
  const started = Date.now();
  const get = await fetchRaw(`${gateway.url}/hello`);
  assert.is(get.status, 200);
  assert.is(get.text, 'GET /hello ');
  assert.is(served(), 2, 'one retry');
  assert.ok(Date.now() - started >= 450, 'waited backoffFactor (500 ms) before the retry');

  const post = await fetchRaw(`${gateway.url}/orders`, { method: 'POST', body: '{"item":1}' });
  assert.is(post.status, 503, 'a POST is not retried unless `methods` says so');
  assert.is(post.text, 'busy');
  assert.is(served(), 3);
  await gateway.close();
  await upstream.close();
});

test('withTimeouts: the four phases in milliseconds', async () => {
  const relay = withTimeouts('http://127.0.0.1:1');
  assert.equal({ ...relay.timeouts }, { connect: 5_000, read: 30_000, write: 30_000, pool: 10_000 });
});

test('withDeadline: per-attempt timeouts, and a retry within the deadline', async () => {
  const { upstream, served } = await everyOtherBusy();
  const relay = withDeadline(upstream.url);
  assert.equal({ ...relay.timeouts }, { connect: 1_000, read: 5_000, write: 30_000, pool: 10_000 });
  const gateway = await serveRelay(relay);
  assert.is((await fetchRaw(`${gateway.url}/items`)).status, 200);
  assert.is(served(), 2);
  await gateway.close();
  await upstream.close();
});

test('retryingPosts: a POST listed in methods is retried with its whole body', async () => {
  const { upstream, served } = await everyOtherBusy();
  const gateway = await serveRelay(retryingPosts(upstream.url));
  const post = await fetchRaw(`${gateway.url}/orders`, { method: 'POST', body: '{"item":1}', headers: { 'idempotency-key': 'k1' } });
  assert.is(post.status, 200);
  assert.is(post.text, 'POST /orders {"item":1}');
  assert.equal(upstream.requests.map((seen) => seen.body.toString()), ['{"item":1}', '{"item":1}'], 'both attempts carried the body');
  assert.is(served(), 2);
  await gateway.close();
  await upstream.close();
});

test.run();
