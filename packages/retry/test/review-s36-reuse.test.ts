// Review s36 (issue 23, reuse): retryPolicy() and withRetry() called as a user of another framework
// would (a queue consumer's loop, fetch against a real flaky server), checked against
// packages/retry/README.md "Without a relay" and docs/reuse.md.
import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream } from '@relay/testkit';
import { retryPolicy, withRetry } from '@relay/retry';

test('retryPolicy: a method opted in as "post" is retried when the outcome says "post", as withRetry does', async () => {
  // packages/retry/src/policy.ts accepts 'post' in `methods` as POST ("accept 'post' in options as
  // the same method"), and withRetry({ method: 'post' }) upper-cases the call's method. retryPolicy is
  // documented as "the same decisions": the same lower-case input must get the same answer.
  const options = { maxRetries: 1, methods: ['post'], backoffFactor: 0 };
  let calls = 0;
  const viaWithRetry = await withRetry(
    async () => {
      calls++;
      return { status: calls === 1 ? 503 : 200 };
    },
    { ...options, method: 'post' },
  );
  assert.is(viaWithRetry.status, 200, 'withRetry retried the lower-case POST');
  assert.is(calls, 2);
  const policy = retryPolicy(options);
  assert.is(policy.shouldRetry(1, { method: 'POST', status: 503 }), true, 'upper case');
  assert.is(policy.shouldRetry(1, { method: 'post', status: 503 }), true, 'lower case: same decision as withRetry');
  assert.is(policy.delay(1, { method: 'post', status: 503 }), 0);
});

test('withRetry: a signal aborted with a non-Error reason rejects with that reason', async () => {
  // docs/reuse.md ("The deadline"): "`signal` ends the run the same way with the signal's reason".
  // AbortController.abort(reason) takes any value (DOM spec); fetch rejects with it as given.
  const controller = new AbortController();
  const run = withRetry(
    ({ signal }) =>
      new Promise<never>((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    { method: 'GET', maxRetries: 2, signal: controller.signal },
  );
  setTimeout(() => controller.abort('the user left'), 10);
  let caught: unknown = null;
  try {
    await run;
  } catch (error) {
    caught = error;
  }
  assert.is(caught, 'the user left', `rejected with ${String(caught)}`);
});

test('withRetry around fetch: a flaky real server (503 with Retry-After, then a reset) ends in the 200, each attempt a fresh request', async () => {
  // Issue 23 Must show: "the retry helper around fetch against a flaky real server".
  const upstream = await startUpstream((req, res, seen) => {
    const index = upstream.requests.indexOf(seen);
    if (index === 0) {
      res.writeHead(503, { 'retry-after': '0', 'content-length': '4' });
      res.end('busy');
    } else if (index === 1) req.socket.destroy();
    else res.end(`ok ${index}`);
  });
  try {
    const attempts: number[] = [];
    const response = await withRetry(
      ({ attempt, signal }) => {
        attempts.push(attempt);
        return fetch(`${upstream.url}/items`, { signal });
      },
      { method: 'GET', maxRetries: 3, backoffFactor: 5, deadline: 5_000 },
    );
    assert.is(response.status, 200);
    assert.is(await response.text(), 'ok 2');
    assert.equal(attempts, [1, 2, 3]);
  } finally {
    await upstream.close();
  }
});

test('withRetry: a POST that got a 503 from a real server is not sent again unless methods lists it', async () => {
  // packages/retry/README.md: "only idempotent methods are called again unless `methods` lists them".
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.writeHead(503, { 'content-length': '0' }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    const response = await withRetry(({ signal }) => fetch(`http://127.0.0.1:${port}/orders`, { method: 'POST', body: 'x', signal }), {
      method: 'POST',
      maxRetries: 3,
      backoffFactor: 1,
    });
    assert.is(response.status, 503);
    assert.is(hits, 1);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

test.run();
