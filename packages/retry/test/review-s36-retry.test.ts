// Review s36 (black box) of @relay/retry, issue 5: which methods and failures are retried against real
// upstreams that fail in each way (refused, reset after the request was sent, read timeout), body replay
// byte for byte (large, chunked, slow client, trailers), bodies over maxReplayBytes, Retry-After on 503/429
// (seconds and HTTP-date, capped), backoff bounds (maxBackoff), every attempt failing, the deadline, and
// retries through balance() moving to another member.
import { createServer, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytePattern, close, closedPort, delay, listen, startFaultyUpstream, fetchRaw, memoryLogger, sendRaw, serveRelay, startUpstream, trailerEchoHandler, trailerEchoOf, sha256, waitFor, type ClientResponse, type Upstream } from '@relay/testkit';
import { createRelay, type RelayOptions } from '@relay/core';
// Not a dependency of @relay/retry: the balancer's source, for the retry-moves-to-another-member case.
import { balance } from '../../balance/src/index.js';
// Likewise: the observe stages' source, for the retry counters docs/observability.md lists.
import { metrics } from '../../observe/src/index.js';
import { retry } from '../src/index.js';

const withPost = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE', 'POST'];

function through(options: RelayOptions) {
  return serveRelay(createRelay(options));
}


/** Sends `chunks` as a chunked body (no Content-Length), waiting `gap` ms between writes (a slow client). */
function sendSlowly(url: string, method: string, chunks: Buffer[], gap: number): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent: false, headers: { 'content-type': 'application/octet-stream' } });
    req.on('error', reject);
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, statusMessage: '', headers: res.headers, rawHeaders: res.rawHeaders, body, text: body.toString(), complete: true });
      });
    });
    void (async () => {
      for (const chunk of chunks) {
        req.write(chunk);
        await delay(gap);
      }
      req.end();
    })();
  });
}

/** An upstream that reads each request whole, then resets the connection for the first `failures` ones (the request reached it). */
async function resetAfterBody(failures: number): Promise<Upstream> {
  const upstream: Upstream = await startUpstream((_req, res, seen) => {
    if (upstream.requests.length <= failures) {
      res.socket?.resetAndDestroy();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(`got ${seen.body.length}`)) });
    res.end(`got ${seen.body.length}`);
  });
  return upstream;
}

// Issue 5: POST retries only when the user opts in; RFC 9110 §9.2.2: a POST that reached the upstream may have run.
test('a POST that reached the upstream and was reset is not sent again by default: one upstream request, 502 to the client', async () => {
  const upstream = await resetAfterBody(5);
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, backoffFactor: 5 })] });
  const response = await fetchRaw(`${served.url}/orders`, { method: 'POST', body: '{"item":1}', headers: { 'content-type': 'application/json' } });
  assert.is(response.status, 502);
  await delay(100);
  assert.is(upstream.requests.length, 1, 'the order was sent once');
  await served.close();
  await upstream.close();
});

// Issue 5: the default errors include "reset before any response byte"; PUT is idempotent (RFC 9110 §9.2.2).
test('a PUT reset after its body reached the upstream is retried, the retry carrying the same bytes and Content-Length', async () => {
  const upstream = await resetAfterBody(1);
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, backoffFactor: 5 })] });
  const body = bytePattern(40_000);
  const response = await fetchRaw(`${served.url}/doc`, { method: 'PUT', body });
  assert.is(response.status, 200);
  assert.is(response.text, `got ${body.length}`);
  assert.is(upstream.requests.length, 2);
  for (const seen of upstream.requests) {
    assert.is(sha256(seen.body), sha256(body));
    assert.is(seen.headers['content-length'], String(body.length));
  }
  await served.close();
  await upstream.close();
});

// Issue 5: "A retried request carries the full original body ... every time"; a slow chunked client is buffered first.
test('a POST opted in, sent slowly in chunks, is replayed byte for byte after a reset; each attempt gets a Content-Length', async () => {
  const upstream = await resetAfterBody(2);
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, backoffFactor: 5, methods: withPost })] });
  const chunks = [bytePattern(1000), Buffer.from('middle\r\n0\r\n\r\n'), bytePattern(20_000).subarray(500)];
  const whole = Buffer.concat(chunks);
  const response = await sendSlowly(`${served.url}/orders`, 'POST', chunks, 80);
  assert.is(response.status, 200);
  assert.is(upstream.requests.length, 3);
  for (const seen of upstream.requests) {
    assert.is(sha256(seen.body), sha256(whole), 'the whole body on every attempt');
    assert.is(seen.headers['content-length'], String(whole.length));
    assert.is(seen.headers['transfer-encoding'], undefined);
  }
  await served.close();
  await upstream.close();
});

// Issue 5: "a larger body streams without buffering and is never retried once its first byte has left".
test('a PUT with a Content-Length over maxReplayBytes that is reset is not retried, and the one upstream copy was whole', async () => {
  const upstream = await resetAfterBody(5);
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, backoffFactor: 5, maxReplayBytes: 16 * 1024 })] });
  const body = bytePattern(300_000);
  const response = await fetchRaw(`${served.url}/big`, { method: 'PUT', body });
  assert.is(response.status, 502);
  await delay(100);
  assert.is(upstream.requests.length, 1, 'never sent again');
  assert.is(sha256(upstream.requests[0]!.body), sha256(body), 'never truncated');
  await served.close();
  await upstream.close();
});

// Issue 5 / retries.md: a chunked body that grows past the limit streams from that point, the bytes read so far first.
test('a slow chunked PUT that outgrows maxReplayBytes reaches the upstream whole and is not retried on a 503', async () => {
  const upstream: Upstream = await startUpstream((_req, res) => {
    res.writeHead(503, { 'content-length': 4 }).end('busy');
  });
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, backoffFactor: 5, maxReplayBytes: 10_000 })] });
  const chunks = [bytePattern(6000), bytePattern(6000).reverse(), bytePattern(50_000)];
  const whole = Buffer.concat(chunks);
  const response = await sendSlowly(`${served.url}/grow`, 'PUT', chunks, 60);
  assert.is(response.status, 503);
  assert.is(response.text, 'busy', 'the upstream answer as it came');
  await delay(100);
  assert.is(upstream.requests.length, 1);
  assert.is(sha256(upstream.requests[0]!.body), sha256(whole), 'the bytes read before the limit came first, nothing lost');
  await served.close();
  await upstream.close();
});

// docs/headers.md "Request trailers ... every transport sends them upstream after the body"; issue 5: a retried
// request carries the full original request. A buffered body must not lose its trailer fields.
test('a chunked PUT with trailer fields keeps its trailers on every attempt when the retry stage buffers it', async () => {
  let calls = 0;
  let failFirst = true;
  const upstream: Upstream = await startUpstream((req, res, seen) => {
    calls++;
    if (failFirst && calls === 1) {
      res.writeHead(503, { 'content-length': 0 }).end();
      return;
    }
    trailerEchoHandler(req, res, seen);
  });
  const plain = await through({ targetBaseUrl: upstream.url });
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, backoffFactor: 5 })] });
  const raw = 'PUT /t HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc123\r\n\r\n';
  try {
    // Control: without the retry stage the relay forwards the trailer field.
    failFirst = false;
    const control = trailerEchoOf(await sendRaw(plain.port, raw));
    assert.is(control.body, 'hello');
    assert.is(control.trailers['x-checksum'], 'abc123', 'control: the relay forwards request trailers');
    // With retry() but no failure: one attempt, the trailer must still arrive.
    const once = trailerEchoOf(await sendRaw(served.port, raw));
    assert.is(once.body, 'hello');
    const onFirst = once.trailers['x-checksum'];
    // A 503 first, then the retried attempt.
    failFirst = true;
    calls = 0;
    const echoed = trailerEchoOf(await sendRaw(served.port, raw));
    assert.is(calls, 2, 'the 503 was retried');
    assert.is(echoed.body, 'hello');
    assert.equal({ first: onFirst, retried: echoed.trailers['x-checksum'] }, { first: 'abc123', retried: 'abc123' }, 'each attempt carries the trailer field');
  } finally {
    await plain.close();
    await served.close();
    await upstream.close();
  }
});

// RFC 9110 §10.2.3: Retry-After is delay-seconds or an HTTP-date; issue 5 honours both on 503 and 429.
test('a 503 with Retry-After as an HTTP-date about 2 s ahead waits until then, not the 10 ms backoff', async () => {
  const arrivals: number[] = [];
  const upstream = await startUpstream((_req, res) => {
    arrivals.push(performance.now());
    if (arrivals.length === 1) {
      res.writeHead(503, { 'retry-after': new Date(Date.now() + 2000).toUTCString(), 'content-length': 0 }).end();
      return;
    }
    res.end('ok');
  });
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 1, backoffFactor: 10 })] });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 200);
  const waited = arrivals[1]! - arrivals[0]!;
  assert.ok(waited > 900 && waited < 3500, `waited ${waited} ms, expected 1–2 s`);
  await served.close();
  await upstream.close();
});

// README: "Add 429 to retry rate-limited requests (with their Retry-After)".
test('a 429 retried on request waits its Retry-After: 1 (about a second)', async () => {
  const arrivals: number[] = [];
  const upstream = await startUpstream((_req, res) => {
    arrivals.push(performance.now());
    if (arrivals.length === 1) {
      res.writeHead(429, { 'retry-after': '1', 'content-length': 0 }).end();
      return;
    }
    res.end('ok');
  });
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 1, backoffFactor: 10, statuses: [429, 503] })] });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 200);
  const waited = arrivals[1]! - arrivals[0]!;
  assert.ok(waited > 900 && waited < 3000, `waited ${waited} ms, expected about 1000`);
  await served.close();
  await upstream.close();
});

// README: retryAfter "A longer one ends the retries and the response passes to the client as it came".
test('a 429 asking for longer than retryAfter passes on at once with its Retry-After and body', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(429, { 'retry-after': '30', 'content-type': 'text/plain', 'content-length': 9 }).end('slow down');
  });
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, backoffFactor: 10, statuses: [429], retryAfter: 2000 })] });
  const started = performance.now();
  const response = await fetchRaw(`${served.url}/`);
  assert.ok(performance.now() - started < 1500);
  assert.is(response.status, 429);
  assert.is(response.headers['retry-after'], '30');
  assert.is(response.text, 'slow down');
  assert.is(upstream.requests.length, 1);
  await served.close();
  await upstream.close();
});

// README: "Retry n waits min(backoffFactor * 2^(n-1), maxBackoff)".
test('backoff is capped by maxBackoff: 100, then 150, then 150 ms', async () => {
  const arrivals: number[] = [];
  const upstream = await startUpstream((_req, res) => {
    arrivals.push(performance.now());
    res.writeHead(arrivals.length < 4 ? 502 : 200, { 'content-length': 0 }).end();
  });
  const logger = memoryLogger();
  const served = await through({ targetBaseUrl: upstream.url, logger, stages: [retry({ maxRetries: 3, backoffFactor: 100, maxBackoff: 150 })] });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 200);
  const delays = logger.lines.filter((line) => line.message === 'retrying upstream request').map((line) => line.fields.delay);
  assert.equal(delays, [100, 150, 150]);
  const waits = [arrivals[1]! - arrivals[0]!, arrivals[2]! - arrivals[1]!, arrivals[3]! - arrivals[2]!];
  assert.ok(waits.every((wait) => wait >= 90 && wait < 1200), `waits ${waits.join(', ')}`);
  await served.close();
  await upstream.close();
});

// Issue 5: "when they are used up on an error, the core's 502/504 applies"; CONTRIBUTING: no internal address in bodies.
test('every attempt refused: 502 after all attempts, a short body naming no address or port', async () => {
  const port = await closedPort();
  const logger = memoryLogger();
  const served = await through({ targetBaseUrl: `http://127.0.0.1:${port}`, logger, stages: [retry({ maxRetries: 2, backoffFactor: 5 })] });
  const response = await fetchRaw(`${served.url}/x`);
  assert.is(response.status, 502);
  assert.ok(response.body.length < 200, response.text);
  assert.not.match(response.text, String(port));
  assert.not.match(response.text, '127.0.0.1');
  const retries = logger.lines.filter((line) => line.message === 'retrying upstream request');
  assert.is(retries.length, 2);
  assert.is(retries[0]!.fields.reason, 'ERR_UPSTREAM_UNREACHABLE');
  await served.close();
});

// Issue 5: read timeout before the head is retried; used up on a timeout the core's 504 applies.
test('every attempt times out before the head: three attempts, then 504', async () => {
  const upstream = await startUpstream(() => {
    /* never answers */
  });
  const served = await through({ targetBaseUrl: upstream.url, timeout: { read: 150 }, stages: [retry({ maxRetries: 2, backoffFactor: 5 })] });
  const response = await fetchRaw(`${served.url}/slow`);
  assert.is(response.status, 504);
  assert.is(upstream.requests.length, 3);
  await served.close();
  await upstream.close();
});

// balancing.md: "retry() outside balance() makes each retry a new attempt; balance() sends it to another target".
test('a POST opted in whose first member refuses reaches the other member whole', async () => {
  const port = await closedPort();
  const live = await startUpstream((_req, res, seen) => {
    res.end(`got ${sha256(seen.body)}`);
  });
  const pool = balance({ targets: [`http://127.0.0.1:${port}`, live.url], strategy: 'round-robin', outlier: false });
  const served = await through({ targetBaseUrl: live.url, stages: [retry({ maxRetries: 1, backoffFactor: 5, methods: withPost }), pool] });
  const body = bytePattern(30_000);
  for (let index = 0; index < 4; index++) {
    const response = await fetchRaw(`${served.url}/orders`, { method: 'POST', body });
    assert.is(response.status, 200, `request ${index}`);
    assert.is(response.text, `got ${sha256(body)}`);
  }
  assert.is(live.requests.length, 4);
  await served.close();
  await live.close();
});

// Issue 5: "a client that disconnects stops the loop at once".
test('a client that leaves while the first attempt waits for its head: no further attempt is made', async () => {
  const upstream = await startUpstream(() => {
    /* never answers */
  });
  const served = await through({ targetBaseUrl: upstream.url, timeout: { read: 300 }, stages: [retry({ maxRetries: 3, backoffFactor: 5 })] });
  const socket = connect(served.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write('GET /wait HTTP/1.1\r\nHost: gw\r\n\r\n');
  assert.ok(await waitFor(() => upstream.requests.length === 1));
  socket.destroy();
  await delay(1000);
  assert.is(upstream.requests.length, 1, 'no attempt after the client left');
  assert.ok(await waitFor(() => served.relay.inFlight === 0));
  await served.close();
  await upstream.close();
});

/** Sends `PUT` with `Expect: 100-continue` and writes the body only after `100 Continue` (as curl and node clients do). */
function expectContinue(port: number, body: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let sent = false;
    const timer = setTimeout(() => socket.destroy(), 4000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!sent && text.startsWith('HTTP/1.1 100')) {
        sent = true;
        socket.write(body);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', () => {});
    socket.write(`PUT /doc HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
  });
}

// headers.md: with server.on('checkContinue', relay.handle) Expect is end to end; retries.md: a small body is read
// before the first attempt. Together the relay must still let the client send its body (nginx, which buffers the
// body for proxy_next_upstream, answers 100 itself as it starts reading it); it must not wait for a body the client
// holds back until 100.
test("with checkContinue → relay.handle, a PUT with Expect: 100-continue through retry() is answered, not stalled until the write timeout", async () => {
  const upstream = await startUpstream((_req, res, seen) => {
    res.end(`got ${seen.body.toString()}`);
  });
  upstream.server.on('checkContinue', (req, res) => {
    res.writeContinue();
    upstream.server.emit('request', req, res);
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, timeout: { write: 1500 }, stages: [retry({ maxRetries: 2, backoffFactor: 5 })] });
  const plain = createRelay({ targetBaseUrl: upstream.url, timeout: { write: 1500 } });
  await relay.startup();
  await plain.startup();
  const server = createServer(relay.handle);
  server.on('checkContinue', relay.handle);
  const plainServer = createServer(plain.handle);
  plainServer.on('checkContinue', plain.handle);
  await listen(server);
  await listen(plainServer);
  const port = (server.address() as { port: number }).port;
  try {
    // Control: the same client through a relay without retry() gets the upstream's 100 and its answer.
    const control = await expectContinue((plainServer.address() as { port: number }).port, 'payload');
    assert.match(control, /HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 [\s\S]*got payload$/);
    const started = performance.now();
    const answer = await expectContinue(port, 'payload');
    const took = performance.now() - started;
    assert.match(answer, /HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 /, `answer: ${JSON.stringify(answer.slice(0, 120))} after ${Math.round(took)} ms`);
    assert.match(answer, /got payload$/);
    assert.ok(took < 1200, `answered after ${took} ms`);
  } finally {
    await close(server);
    await close(plainServer);
    await relay.shutdown({ timeout: 500 });
    await plain.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

// README: with deadline, "a backoff wait that would end after the deadline is not started (the last outcome is returned)".
test('a Retry-After wait that would pass the deadline is not started: the 503 passes on at once', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(503, { 'retry-after': '2', 'content-length': 4 }).end('busy');
  });
  const served = await through({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, backoffFactor: 5, deadline: 1000 })] });
  const started = performance.now();
  const response = await fetchRaw(`${served.url}/`);
  assert.ok(performance.now() - started < 800);
  assert.is(response.status, 503);
  assert.is(response.text, 'busy');
  assert.is(upstream.requests.length, 1);
  await served.close();
  await upstream.close();
});

// docs/observability.md: relay_upstream_attempts_total "Upstream attempts, retries included", relay_upstream_retries_total
// "Attempts after the first of a client request", with [m.request, retry(), m.attempt].
test('metrics count every attempt and each retry: 502, 502, 200 gives 3 attempts (2 × 5xx, 1 × 2xx) and 2 retries', async () => {
  let calls = 0;
  const upstream = await startUpstream((_req, res) => {
    calls++;
    res.writeHead(calls < 3 ? 502 : 200, { 'content-length': 0 }).end();
  });
  const m = metrics({ relay: 'review-s36-retry', targets: false });
  const served = await through({ targetBaseUrl: upstream.url, stages: [m.request, retry({ maxRetries: 3, backoffFactor: 5 }), m.attempt] });
  const response = await fetchRaw(`${served.url}/m`);
  assert.is(response.status, 200);
  await delay(50);
  const text = await m.registry.metrics();
  const value = (name: string, extra = ''): number => {
    const line = text.split('\n').find((row) => row.startsWith(name) && row.includes('relay="review-s36-retry"') && row.includes(extra));
    return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  assert.is(value('relay_upstream_retries_total'), 2);
  assert.is(value('relay_upstream_attempts_total', 'outcome="5xx"'), 2);
  assert.is(value('relay_upstream_attempts_total', 'outcome="2xx"'), 1);
  await served.close();
  await upstream.close();
});

// Issue 5: default errors are "connection refused or reset before any response byte, connect timeout, read timeout
// before the response head"; retries.md: "A failure after the response started is never retried".
test('faulty upstream: reset before the head is retried (3 attempts, 502); a bad status line and a body cut after the head are not', async () => {
  const faulty = await startFaultyUpstream();
  const served = await through({ targetBaseUrl: faulty.url, timeout: { read: 1000 }, stages: [retry({ maxRetries: 2, backoffFactor: 5 })] });
  try {
    const reset = await fetchRaw(`${served.url}/reset-before-head/a`);
    assert.is(reset.status, 502);
    assert.is(faulty.requests.filter((line) => line.includes('/reset-before-head/a')).length, 3);
    const bad = await fetchRaw(`${served.url}/bad-status-line/b`);
    assert.is(bad.status, 502);
    assert.is(faulty.requests.filter((line) => line.includes('/bad-status-line/b')).length, 1, 'ERR_UPSTREAM_PROTOCOL is not a default');
    const cut = await fetchRaw(`${served.url}/close-mid-body/c`);
    assert.is(cut.status, 200);
    assert.is(cut.complete, false, 'the client sees the cut, not a second copy');
    await delay(100);
    assert.is(faulty.requests.filter((line) => line.includes('/close-mid-body/c')).length, 1);
    const stalled = await fetchRaw(`${served.url}/head-then-stall/d`);
    assert.is(stalled.status, 200);
    assert.is(stalled.complete, false);
    assert.is(faulty.requests.filter((line) => line.includes('/head-then-stall/d')).length, 1, 'a read timeout after the head is not retried');
  } finally {
    await served.close();
    await faulty.close();
  }
});
test.run();
