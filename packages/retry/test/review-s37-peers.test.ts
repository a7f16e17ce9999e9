// Review s37 (retry vs peers): @fastify/reply-from's http-retry cases (503 then success, GET/HEAD only by
// default), Envoy's retry policy (retry_on 5xx per attempt, each attempt a fresh request) and the relay's own
// front doors. Reviewed: retry() through relay.fetch (a Web Request, as an edge or Hono front door sends it),
// and HEAD retries.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { retry } from '../src/index.js';

/** An upstream answering 503 to its first request and 200 after, echoing the body length it got. */
async function busyOnce() {
  let count = 0;
  return startUpstream((_req, res, seen) => {
    count += 1;
    res.writeHead(count === 1 ? 503 : 200, { 'content-type': 'text/plain' });
    res.end(`got ${seen.body.toString()}`);
  });
}

// packages/retry/README.md "Body replay": a body of at most maxReplayBytes is buffered and replayed; PUT is retried by
// default (issue 5). relay.fetch is one of the relay's entries (docs/architecture.md, "fetch-exchange.ts"). reply-from
// retries its 503 the same way whatever the front door. Today the retry stage calls request.trailers() after buffering,
// and the Web Request's body stream has no rawTrailers, so the request fails with 500 ERR_INTERNAL.
test('relay.fetch with retry(): a PUT with a small body answered 503 then 200 gets the 200, the upstream seeing the body twice', async () => {
  const upstream = await busyOnce();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, backoffFactor: 10 })] });
  await relay.startup();
  try {
    const response = await relay.fetch(new Request('http://gw.example/items/1', { method: 'PUT', body: 'hello world' }));
    const text = await response.text();
    assert.is(response.status, 200, `got ${response.status} ${text}`);
    assert.is(text, 'got hello world');
    assert.equal(upstream.requests.map((seen) => seen.body.toString()), ['hello world', 'hello world']);
    assert.is(upstream.requests[1]!.headers['content-length'], '11');
  } finally {
    await relay.shutdown();
    await upstream.close();
  }
});

// The same through relay.fetch with a streamed Web body (duplex: 'half', no Content-Length): buffered, replayed whole.
test('relay.fetch with retry(): a streamed PUT body without a length is replayed whole after a 503', async () => {
  const upstream = await busyOnce();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, backoffFactor: 10 })] });
  await relay.startup();
  try {
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode('abc'));
        controller.enqueue(encoder.encode('def'));
        controller.close();
      },
    });
    const init = { method: 'PUT', body, duplex: 'half' } as RequestInit;
    const response = await relay.fetch(new Request('http://gw.example/stream', init));
    const text = await response.text();
    assert.is(response.status, 200, `got ${response.status} ${text}`);
    assert.equal(upstream.requests.map((seen) => seen.body.toString()), ['abcdef', 'abcdef']);
  } finally {
    await relay.shutdown();
    await upstream.close();
  }
});

// Control: a plain relay.fetch PUT without the retry stage reaches the upstream with its body (the 503 passes on).
test('relay.fetch without retry(): a PUT body reaches the upstream once and its 503 passes on (control)', async () => {
  const upstream = await busyOnce();
  const relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
  try {
    const response = await relay.fetch(new Request('http://gw.example/once', { method: 'PUT', body: 'hello world' }));
    assert.is(response.status, 503);
    assert.is(await response.text(), 'got hello world');
    assert.is(upstream.requests.length, 1);
  } finally {
    await relay.shutdown();
    await upstream.close();
  }
});

// reply-from http-retry: HEAD is retried like GET; a HEAD 503 has a Content-Length but no body, and letting it go must
// not wait for bytes that never come (RFC 9110 §9.3.2).
test('a HEAD answered 503 (Content-Length 5000, no body) then 200 is retried at once and gets the 200 head', async () => {
  let count = 0;
  const upstream = await startUpstream((req, res) => {
    count += 1;
    res.writeHead(count === 1 ? 503 : 200, { 'content-length': '5000' });
    res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(5000));
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, backoffFactor: 10 })] }));
  try {
    const started = performance.now();
    const response = await fetchRaw(`${served.url}/h`, { method: 'HEAD' });
    assert.is(response.status, 200);
    assert.is(response.headers['content-length'], '5000');
    assert.is(upstream.requests.length, 2);
    assert.ok(performance.now() - started < 2_000, 'no wait on a body that never comes');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
