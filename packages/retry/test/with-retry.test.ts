// withRetry() around fetch, against a real flaky upstream on 127.0.0.1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, memoryLogger, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { RelayError } from '@relay/core';
import { withRetry, type WithRetryOptions } from '../src/index.js';

/** Upstream behaviour per request number (0-based): answer with a status, reset the connection, or never answer. */
type Plan = (index: number) => number | 'reset' | 'stall';

let plan: Plan = () => 200;
let upstream: Upstream;
/** Requests whose connection closed before an answer (an aborted attempt). */
let abandoned = 0;

test.before(async () => {
  upstream = await startUpstream((req, res) => {
    const index = upstream.requests.length - 1;
    const step = plan(index);
    if (step === 'reset') {
      req.socket.destroy();
      return;
    }
    if (step === 'stall') {
      res.on('close', () => abandoned++);
      return;
    }
    // Bodies larger than undici reads ahead hold their connection until read or cancelled.
    const size = req.url === '/medium' ? 20_000 : req.url === '/large' ? 200_000 : 0;
    const body = size > 0 ? 'x'.repeat(size) : `answer ${index}: ${step}`;
    res.writeHead(step, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...(step === 429 ? { 'retry-after': '1' } : {}) });
    res.end(body);
  });
});

test.after(async () => {
  await upstream.close();
});

test.before.each(() => {
  upstream.requests.length = 0;
  abandoned = 0;
});

const quick: Omit<WithRetryOptions, 'method'> = { maxRetries: 3, backoffFactor: 5 };

function get(path = '/items', init: RequestInit = {}, options: Partial<WithRetryOptions> = {}): Promise<Response> {
  return withRetry(({ signal }) => fetch(`${upstream.url}${path}`, { ...init, signal }), { ...quick, method: init.method ?? 'GET', ...options });
}

test('a GET answered 503, then reset, then 200 is retried until it succeeds', async () => {
  plan = (index) => [503, 'reset' as const, 200][index] ?? 200;
  const response = await get();
  assert.is(response.status, 200);
  assert.is(await response.text(), 'answer 2: 200');
  assert.is(upstream.requests.length, 3);
});

test('idempotency: a POST is not retried by default; the 503 passes as the upstream sent it', async () => {
  plan = (index) => (index === 0 ? 503 : 200);
  const response = await get('/orders', { method: 'POST', body: '{"sku":1}' });
  assert.is(response.status, 503);
  assert.is(await response.text(), 'answer 0: 503');
  assert.is(upstream.requests.length, 1, 'one request reached the upstream');
});

test('idempotency: a reset POST is not sent again either; opted in, it is, with its body each time', async () => {
  plan = (index) => (index === 0 ? 'reset' : 200);
  const failed = await get('/orders', { method: 'POST', body: 'order-1' }).catch((error: unknown) => error);
  assert.instance(failed, TypeError, 'fetch failed, passed on as fetch threw it');
  assert.is(upstream.requests.length, 1);
  upstream.requests.length = 0;
  const response = await get('/orders', { method: 'POST', body: 'order-1' }, { methods: ['POST'] });
  assert.is(response.status, 200);
  assert.equal(upstream.requests.map((request) => request.body.toString()), ['order-1', 'order-1']);
});

test('retries run out: the last response is returned with its body readable', async () => {
  plan = () => 502;
  const response = await get('/items', {}, { maxRetries: 2 });
  assert.is(response.status, 502);
  assert.is(await response.text(), 'answer 2: 502');
  assert.is(upstream.requests.length, 3);
});

test('responses retried past are let go: a small body is read (its connection reused), a large one cancelled', async () => {
  const sockets = new Set<import('node:net').Socket>();
  const onConnection = (socket: import('node:net').Socket): void => {
    sockets.add(socket);
  };
  upstream.server.on('connection', onConnection);
  try {
    plan = () => 503;
    for (const path of ['/medium', '/large']) {
      for (let run = 0; run < 4; run++) await (await get(path, {}, { maxRetries: 3, backoffFactor: 1 })).text();
      assert.ok(await waitFor(() => [...sockets].filter((socket) => !socket.destroyed).length <= 2, 2000), `${path}: at most two connections open`);
      if (path === '/medium') assert.ok(sockets.size <= 3, `16 requests on ${sockets.size} connections: drained ones were reused`);
    }
    assert.is(upstream.requests.length, 32);
  } finally {
    upstream.server.off('connection', onConnection);
  }
});

test('a refused connection is retried and then thrown as fetch threw it', async () => {
  const port = await closedPort();
  let calls = 0;
  const failed = await withRetry(
    () => {
      calls++;
      return fetch(`http://127.0.0.1:${port}/`);
    },
    { ...quick, method: 'GET' },
  ).catch((error: unknown) => error);
  assert.instance(failed, TypeError);
  assert.is(((failed as TypeError).cause as { code?: string }).code, 'ECONNREFUSED');
  assert.is(calls, 4, 'the first attempt and 3 retries');
});

test('Retry-After on a 429 is waited for, and logged as the stage logs it', async () => {
  plan = (index) => (index === 0 ? 429 : 200);
  const logger = memoryLogger();
  const started = performance.now();
  const response = await get('/items', {}, { statuses: [429], logger });
  assert.is(response.status, 200);
  assert.ok(performance.now() - started >= 990, 'waited the second Retry-After asked for');
  assert.equal(logger.lines.map((line) => [line.message, line.fields.reason, line.fields.delay, line.fields.retryAfter]), [
    ['retrying upstream request', 'status 429', 1000, true],
  ]);
});

test('the deadline holds: a stalled upstream ends in ERR_DEADLINE, the attempt in flight is aborted', async () => {
  plan = () => 'stall';
  const started = performance.now();
  const failed = await get('/slow', {}, { deadline: 300 }).catch((error: unknown) => error);
  const elapsed = performance.now() - started;
  assert.instance(failed, RelayError);
  assert.is((failed as RelayError).code, 'ERR_DEADLINE');
  assert.ok(elapsed >= 290 && elapsed < 10_000, `ended after ${Math.round(elapsed)} ms`);
  assert.ok(await waitFor(() => abandoned === 1, 5000), 'the upstream saw its request abandoned');
});

test('the deadline holds even when the call ignores the signal; a wait that would pass it is not started', async () => {
  plan = () => 'stall';
  const ignoring = await withRetry(() => fetch(`${upstream.url}/slow`).catch(() => null), { method: 'GET', deadline: 200 }).catch((error: unknown) => error);
  assert.is((ignoring as RelayError).code, 'ERR_DEADLINE');
  plan = () => 503;
  const started = performance.now();
  const waiting = await get('/items', {}, { maxRetries: 5, backoffFactor: 60_000, maxBackoff: 60_000, deadline: 50_000 }).catch((error: unknown) => error);
  assert.ok(waiting instanceof Response, 'a 60 s wait would pass the 50 s deadline: it is not started and the 503 passes');
  assert.is((waiting as Response).status, 503);
  assert.ok(performance.now() - started < 10_000);
  assert.is(upstream.requests.length, 2, 'the stalled request and one 503');
  await (waiting as Response).text();
  upstream.server.closeAllConnections();
});

test('options.signal stops the run at once with its reason', async () => {
  plan = () => 'stall';
  const controller = new AbortController();
  const pending = get('/slow', {}, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('user went away')), 50);
  const failed = await pending.catch((error: unknown) => error);
  assert.is((failed as Error).message, 'user went away');
  upstream.server.closeAllConnections();
});

test('an SDK-style error carrying status 503 is retried like a response', async () => {
  let calls = 0;
  const result = await withRetry(
    async () => {
      calls++;
      if (calls < 3) throw Object.assign(new Error('Service Unavailable'), { status: 503, headers: { 'retry-after': '0' } });
      return 'done';
    },
    { ...quick, method: 'GET' },
  );
  assert.is(result, 'done');
  assert.is(calls, 3);
});

test('an SDK error with status 503 and { "Retry-After": "3600" } is not retried: the server asked for an hour', async () => {
  let calls = 0;
  const sdkError = Object.assign(new Error('Service Unavailable'), { status: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': '3600' } });
  const failure = await withRetry(
    async () => {
      calls++;
      throw sdkError;
    },
    { method: 'GET', maxRetries: 2, backoffFactor: 50 },
  ).catch((error: unknown) => error);
  assert.is(failure, sdkError, 'the last error is thrown');
  assert.is(calls, 1, 'a Retry-After beyond retryAfter ends the retries, as the stage ends them');
});

test('options are checked: method is required, unknown to retry() options are refused, maxReplayBytes does not apply', async () => {
  const call = async (): Promise<string> => 'x';
  assert.throws(() => withRetry(call, {} as WithRetryOptions), /method must be the HTTP method/);
  await assert.not.throws(() => withRetry(call, { method: 'get' }));
  assert.throws(() => withRetry(call, { method: 'GET', maxReplayBytes: 1 } as WithRetryOptions), /maxReplayBytes does not apply/);
  assert.throws(() => withRetry(call, { method: 'GET', deadline: -1 }), /deadline must be a finite number/);
  assert.throws(() => withRetry(call, { method: 'GET', signal: {} as AbortSignal }), /signal must be an AbortSignal/);
});

test.run();
