import { createServer } from 'node:http';
import { createServer as createTcpServer, connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, closedPort, delay, fetchRaw, listen, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { createRelay, type RelayOptions, type Stage } from '@relay/core';
import { retry } from '../src/index.js';

/** An upstream answering each request with the next status of `statuses` (the last one repeats), stamping arrival times. */
async function flaky(statuses: number[], headers: Record<string, string> = {}) {
  const arrivals: number[] = [];
  const upstream = await startUpstream((_req, res) => {
    arrivals.push(performance.now());
    const status = statuses[Math.min(arrivals.length, statuses.length) - 1]!;
    const body = status === 200 ? 'ok' : `busy ${arrivals.length}`;
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-attempt': String(arrivals.length), ...headers });
    res.end(body);
  });
  return { upstream, arrivals };
}

function through(options: RelayOptions) {
  return serveRelay(createRelay(options));
}


test('a stage whose trailers() throws does not fail a buffered upload: the body goes whole with its length, the trailers dropped with a log line', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const broken: Stage = {
    name: 'broken-trailers',
    wrap: (next) => (request) => next({ ...request, trailers: () => {
      throw new Error('unreadable');
    } }),
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [broken, retry({ maxRetries: 1 })] }));
  try {
    const answer = await fetchRaw(`${served.url}/put`, { method: 'PUT', body: 'hello world' });
    assert.is(answer.status, 200);
    assert.is(upstream.requests[0]!.body.toString(), 'hello world');
    assert.is(upstream.requests[0]!.headers['content-length'], '11');
    assert.ok(logger.lines.some((line) => line.message === 'invalid request trailers dropped'), 'the dropped trailers are logged');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('502, 502, 200 gives 200 after three attempts, waiting 200 then 400 ms, one log line per retry', async () => {
  const { upstream, arrivals } = await flaky([502, 502, 200]);
  const logger = memoryLogger();
  const served = await through({ targetBaseUrl: upstream.url, logger, stages: [retry({ maxRetries: 3, backoffFactor: 200 })] });
  const response = await fetchRaw(`${served.url}/items?page=2`);
  assert.is(response.status, 200);
  assert.is(response.text, 'ok');
  assert.is(upstream.requests.length, 3);
  const first = arrivals[1]! - arrivals[0]!;
  const second = arrivals[2]! - arrivals[1]!;
  assert.ok(first >= 190 && first < 1500, `first wait ${first} ms, expected about 200`);
  assert.ok(second >= 390 && second < 2500, `second wait ${second} ms, expected about 400`);
  const retries = logger.lines.filter((line) => line.message === 'retrying upstream request');
  assert.is(retries.length, 2);
  assert.equal(retries[0]!.fields, { method: 'GET', url: `${upstream.url}/items`, attempt: 1, reason: 'status 502', delay: 200, retryAfter: false });
  assert.is(retries[1]!.fields.attempt, 2);
  assert.is(retries[1]!.fields.delay, 400);
  await served.close();
  await upstream.close();
});

test('exhausted 503 is passed through with its own status, headers and body', async () => {
  const { upstream } = await flaky([503], { 'x-upstream': 'yes', 'cache-control': 'no-cache' });
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, backoffFactor: 10 })] });
  const response = await fetchRaw(`${served.url}/busy`);
  assert.is(upstream.requests.length, 3, 'first attempt and two retries');
  assert.is(response.status, 503);
  assert.is(response.text, 'busy 3', 'the last upstream body, not an error of ours');
  assert.is(response.headers['x-upstream'], 'yes');
  assert.is(response.headers['x-attempt'], '3');
  assert.is(response.headers['cache-control'], 'no-cache');
  assert.is(response.headers['content-type'], 'text/plain');
  await served.close();
  await upstream.close();
});

test('a 503 with Retry-After: 1 waits about a second, whatever the backoff', async () => {
  const arrivals: number[] = [];
  const upstream = await startUpstream((_req, res) => {
    arrivals.push(performance.now());
    if (arrivals.length === 1) res.writeHead(503, { 'retry-after': '1', 'content-length': 0 }).end();
    else res.end('ok');
  });
  const logger = memoryLogger();
  const served = await through({ targetBaseUrl: upstream.url, logger, stages: [retry({ maxRetries: 1, backoffFactor: 20 })] });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 200);
  const waited = arrivals[1]! - arrivals[0]!;
  assert.ok(waited >= 980 && waited < 3000, `waited ${waited} ms, expected about 1000`);
  const line = logger.lines.find((l) => l.message === 'retrying upstream request');
  assert.is(line?.fields.delay, 1000);
  assert.is(line?.fields.retryAfter, true);
  await served.close();
  await upstream.close();
});

test('a Retry-After longer than the retryAfter cap ends the retries: the 503 passes on at once', async () => {
  const { upstream } = await flaky([503, 200], { 'retry-after': '120' });
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, retryAfter: 5_000 })] });
  const started = performance.now();
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 503);
  assert.is(response.headers['retry-after'], '120', 'the client sees when to come back');
  assert.is(upstream.requests.length, 1);
  assert.ok(performance.now() - started < 1000);
  await served.close();
  await upstream.close();
});

test('connection refused on the first try, then success once the upstream is listening', async () => {
  const port = await closedPort();
  const logger = memoryLogger();
  const served = await through({
    targetBaseUrl: `http://127.0.0.1:${port}`,
    logger,
    stages: [retry({ maxRetries: 3, backoffFactor: 500 })],
  });
  const pending = fetchRaw(`${served.url}/hello`);
  assert.ok(await waitFor(() => logger.lines.some((l) => l.fields.reason === 'ERR_UPSTREAM_UNREACHABLE'), 2000), 'the refused attempt is retried');
  // Only now does an upstream listen on the port the relay points at.
  const server = createServer((_req, res) => res.end('up now'));
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const response = await pending;
  assert.is(response.status, 200);
  assert.is(response.text, 'up now');
  await served.close();
  await close(server);
});

test('a reset before any response byte is retried; the retried attempt succeeds', async () => {
  let connections = 0;
  const tcp = createTcpServer((socket: Socket) => {
    connections++;
    if (connections === 1) {
      socket.once('data', () => socket.resetAndDestroy());
      return;
    }
    socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
  });
  const url = await listen(tcp);
  const logger = memoryLogger();
  const served = await through({ targetBaseUrl: url, logger, stages: [retry({ maxRetries: 2, backoffFactor: 10 })] });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 200);
  assert.is(response.text, 'ok');
  assert.is(connections, 2);
  assert.ok(logger.lines.some((l) => l.fields.reason === 'ERR_UPSTREAM_RESET'));
  await served.close();
  await new Promise((resolve) => tcp.close(resolve));
});

test('retry outside the transport gives each attempt its own read timeout', async () => {
  const upstream = await startUpstream((req, res) => {
    if (upstream.requests.length === 1) return; // the first attempt never gets an answer
    res.end(`answered ${req.url}`);
  });
  const served = await through({ targetBaseUrl: upstream.url, timeout: { read: 300 }, stages: [retry({ maxRetries: 1, backoffFactor: 10 })] });
  const started = performance.now();
  const response = await fetchRaw(`${served.url}/slow`);
  const elapsed = performance.now() - started;
  assert.is(response.status, 200);
  assert.is(response.text, 'answered /slow');
  assert.ok(elapsed >= 280 && elapsed < 3000, `${elapsed} ms: one read timeout, then a fresh attempt`);
  await served.close();
  await upstream.close();
});

test('retries used up on an error give the core 502 with no address in the body', async () => {
  const port = await closedPort();
  const served = await through({ targetBaseUrl: `http://127.0.0.1:${port}`, stages: [retry({ maxRetries: 2, backoffFactor: 10 })] });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 502);
  assert.ok(response.text.includes('ERR_UPSTREAM_UNREACHABLE'));
  assert.not.ok(response.text.includes(String(port)));
  await served.close();
});

test('errors not in `errors` are not retried: a read timeout with errors: [ERR_UPSTREAM_UNREACHABLE] is one attempt', async () => {
  const upstream = await startUpstream(() => {});
  const served = await through({
    targetBaseUrl: upstream.url,
    timeout: { read: 200 },
    stages: [retry({ maxRetries: 3, backoffFactor: 10, errors: ['ERR_UPSTREAM_UNREACHABLE'] })],
  });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 504);
  assert.is(upstream.requests.length, 1);
  await served.close();
  await upstream.close();
});

test('client abort during backoff stops the loop at once: the upstream sees no more requests', async () => {
  const { upstream } = await flaky([503]);
  let settledAt = 0;
  let settledWith = '';
  // Outside the retry stage: records when the retry loop settles, and how.
  const probe: Stage = {
    name: 'probe',
    wrap: (next) =>
      function probeStage(request) {
        return next(request).then(
          (response) => {
            settledAt = performance.now();
            settledWith = 'response';
            return response;
          },
          (error: { code?: string }) => {
            settledAt = performance.now();
            settledWith = String(error.code);
            throw error;
          },
        );
      },
  };
  const served = await through({
    targetBaseUrl: upstream.url,
    stages: [probe, retry({ maxRetries: 5, backoffFactor: 1500 })],
  });
  const socket = connect(served.port, '127.0.0.1');
  socket.write('GET /wait HTTP/1.1\r\nHost: gw\r\n\r\n');
  assert.ok(await waitFor(() => upstream.requests.length === 1), 'the first attempt reached the upstream');
  await delay(100);
  const abortedAt = performance.now();
  socket.destroy();
  assert.ok(await waitFor(() => settledAt > 0, 1000), 'the retry loop ended');
  assert.ok(settledAt - abortedAt < 500, `ended ${settledAt - abortedAt} ms after the abort, well before the 1500 ms backoff`);
  assert.is(settledWith, 'ERR_CLIENT_ABORTED');
  await delay(1800);
  assert.is(upstream.requests.length, 1, 'no attempt after the client left');
  assert.ok(await waitFor(() => served.relay.inFlight === 0), 'nothing left in flight');
  await served.close();
  await upstream.close();
});

test('a relay keeps serving after retries: many requests, each answered', async () => {
  const { upstream } = await flaky([502, 200]);
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 1, backoffFactor: 5 })] });
  const first = await fetchRaw(`${served.url}/a`);
  assert.is(first.status, 200);
  const rest = await Promise.all(Array.from({ length: 20 }, (_, index) => fetchRaw(`${served.url}/n${index}`)));
  assert.ok(rest.every((r) => r.status === 200));
  assert.is(upstream.requests.length, 22);
  await served.close();
  await upstream.close();
});

test.run();
