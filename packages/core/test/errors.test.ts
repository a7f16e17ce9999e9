import { createServer as createTcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, delay, fetchRaw, listen, memoryLogger, serveRelay, startUpstream, tlsFixture, waitFor } from '@relay/testkit';
import { createRelay, errorBody, RelayError, toRelayError, type RelayOptions, type Stage } from '../src/index.js';

async function through(options: RelayOptions) {
  return serveRelay(createRelay(options));
}

function assertNoAddress(text: string, port: number) {
  assert.not.ok(text.includes('127.0.0.1'), `body names the address: ${text}`);
  assert.not.ok(text.includes(String(port)), `body names the port: ${text}`);
  assert.not.ok(/\bat \S+ \(/.test(text), `body shows a stack: ${text}`);
}

test('502 from a closed port, the body naming no address, one log line with the detail', async () => {
  const port = await closedPort();
  const logger = memoryLogger();
  const served = await through({ targetBaseUrl: `http://127.0.0.1:${port}`, logger });
  const response = await fetchRaw(`${served.url}/x?y=1`);
  assert.is(response.status, 502);
  assert.match(String(response.headers['content-type']), /^text\/plain/);
  assert.ok(response.body.length > 0 && response.body.length < 200);
  assertNoAddress(response.text, port);
  const line = logger.lines.find((l) => l.level === 'warn');
  assert.ok(line, 'a warn line');
  assert.is(line!.fields.method, 'GET');
  assert.is(line!.fields.url, `http://127.0.0.1:${port}/x`, 'the query is not logged (logQuery: false by default)');
  assert.is(line!.fields.attempt, 1);
  assert.is(line!.fields.code, 'ERR_UPSTREAM_UNREACHABLE');
  const next = await fetchRaw(`${served.url}/again`);
  assert.is(next.status, 502, 'the relay keeps serving');
  await served.close();
});

test('504 from a silent upstream after the read timeout, the body naming no address', async () => {
  const silent = await startUpstream(() => {});
  const logger = memoryLogger();
  const served = await through({ targetBaseUrl: silent.url, timeout: { read: 300 }, logger });
  const started = Date.now();
  const response = await fetchRaw(`${served.url}/slow`);
  const elapsed = Date.now() - started;
  assert.is(response.status, 504);
  assert.ok(elapsed >= 250 && elapsed < 2000, `took ${elapsed} ms`);
  assert.ok(response.text.includes('ERR_READ_TIMEOUT'));
  assertNoAddress(response.text, silent.port);
  assert.ok(logger.lines.some((l) => l.fields.code === 'ERR_READ_TIMEOUT' && l.message.includes('timed out')));
  await served.close();
  await silent.close();
});

test('504 when the TLS handshake never completes within the connect timeout', async () => {
  const sockets: Socket[] = [];
  const mute = createTcpServer((socket) => sockets.push(socket));
  const url = await listen(mute);
  const served = await through({ targetBaseUrl: url.replace('http:', 'https:'), timeout: { connect: 300 }, tls: { rejectUnauthorized: false } });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 504);
  assert.ok(response.text.includes('ERR_CONNECT_TIMEOUT'), response.text);
  for (const socket of sockets) socket.destroy();
  await served.close();
  await new Promise((resolve) => mute.close(resolve));
});

test('504 when the upstream stalls between body bytes: the client sees an aborted response', async () => {
  const stall = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('x'.repeat(10));
  });
  const served = await through({ targetBaseUrl: stall.url, timeout: { read: 300 } });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 200);
  assert.is(response.complete, false, 'the response is not complete');
  assert.is(response.body.length, 10);
  await served.close();
  await stall.close();
});

test('an upstream reset mid-body leaves the client with an aborted, not complete, response', async () => {
  for (const framing of ['chunked', 'length'] as const) {
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, framing === 'length' ? { 'content-length': '1000000' } : {});
      res.write(Buffer.alloc(64 * 1024, 97));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const logger = memoryLogger();
    const served = await through({ targetBaseUrl: upstream.url, logger });
    const response = await fetchRaw(`${served.url}/big`);
    assert.is(response.status, 200);
    assert.is(response.complete, false, `${framing}: the client must see the abort`);
    assert.ok(response.body.length < 1_000_000);
    assert.ok(await waitFor(() => logger.lines.some((l) => l.message.includes('after it started'))), 'logged');
    const again = await fetchRaw(`${served.url}/big`);
    assert.is(again.complete, false, 'the relay keeps serving');
    await served.close();
    await upstream.close();
  }
});

test('an upstream reset before the response head is a 502', async () => {
  const upstream = await startUpstream((req) => req.socket.destroy());
  const served = await through({ targetBaseUrl: upstream.url });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 502);
  assert.ok(response.text.includes('ERR_UPSTREAM_RESET'));
  await served.close();
  await upstream.close();
});

test('a malformed upstream response is a 502', async () => {
  const garbage = createTcpServer((socket) => {
    socket.on('data', () => socket.end('HTTP/1.1 abc nonsense\r\n\r\n'));
  });
  const url = await listen(garbage);
  const served = await through({ targetBaseUrl: url });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 502);
  assert.ok(response.text.includes('ERR_UPSTREAM_PROTOCOL'), response.text);
  await served.close();
  await new Promise((resolve) => garbage.close(resolve));
});

test('a client that disconnects before the response aborts the upstream request within a second', async () => {
  let upstreamClosedAt = 0;
  const upstream = await startUpstream((req) => {
    req.socket.on('close', () => (upstreamClosedAt = Date.now()));
  });
  const served = await through({ targetBaseUrl: upstream.url });
  const socket = (await import('node:net')).connect(served.port, '127.0.0.1');
  socket.write('GET /wait HTTP/1.1\r\nHost: gw\r\n\r\n');
  assert.ok(await waitFor(() => upstream.requests.length === 1), 'the upstream got the request');
  const abortedAt = Date.now();
  socket.destroy();
  assert.ok(await waitFor(() => upstreamClosedAt > 0, 1000), 'upstream connection closed');
  assert.ok(upstreamClosedAt - abortedAt < 1000, `${upstreamClosedAt - abortedAt} ms`);
  assert.ok(await waitFor(() => served.relay.inFlight === 0), 'nothing left in flight');
  await served.close();
  await upstream.close();
});

test('a client that disconnects during the response aborts the upstream within a second', async () => {
  let upstreamClosedAt = 0;
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('tick\n'), 20);
    res.on('close', () => {
      clearInterval(timer);
      upstreamClosedAt = Date.now();
    });
  });
  const served = await through({ targetBaseUrl: upstream.url });
  const { request } = await import('node:http');
  let abortedAt = 0;
  await new Promise<void>((resolve) => {
    const req = request(`${served.url}/stream`, { agent: false }, (res) => {
      res.once('data', () => {
        abortedAt = Date.now();
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
    req.end();
  });
  assert.ok(await waitFor(() => upstreamClosedAt > 0, 1000), 'upstream saw the abort');
  assert.ok(upstreamClosedAt - abortedAt < 1000);
  await served.close();
  await upstream.close();
});

test('a RelayError checks the headers of its answer, and they never replace the answer\'s own', async () => {
  assert.throws(() => new RelayError('ERR_INTERNAL', 'x', { headers: { 'bad name': 'v' } }), /header name/i);
  assert.throws(() => new RelayError('ERR_INTERNAL', 'x', { headers: { 'x-id': 'a\r\nb' } }), /character/i);
  for (const name of ['Connection', 'transfer-encoding', 'content-length']) {
    assert.throws(() => new RelayError('ERR_INTERNAL', 'x', { headers: { [name]: 'close' } }), /is the relay's to set/);
  }
  // `constructor` is a valid header name, and no property of a plain object's prototype hides it.
  const error = new RelayError('ERR_READ_TIMEOUT', 'slow', { headers: { 'X-Id': '7', 'Content-Type': 'text/html', constructor: 'c' } });
  assert.equal(error.headers, { 'x-id': '7', 'content-type': 'text/html', constructor: 'c' });
  const served = await serveRelay(createRelay({ targetBaseUrl: 'http://127.0.0.1:1', stages: [{ name: 'fails', wrap: () => async () => { throw error; } }] }));
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 504);
  assert.is(response.headers['x-id'], '7');
  assert.is(response.headers.constructor, 'c');
  assert.is(response.headers['content-type'], 'text/plain; charset=utf-8');
  await served.close();
});

test('a failing stage becomes a 500 with a log line, and the relay keeps serving', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  let calls = 0;
  const served = await through({
    targetBaseUrl: upstream.url,
    logger,
    stages: [
      {
        name: 'flaky',
        wrap: (next) =>
          async function flaky(request) {
            calls++;
            if (calls === 1) throw new Error('stage bug at /internal/10.0.0.5');
            return next(request);
          },
      },
    ],
  });
  const first = await fetchRaw(`${served.url}/`);
  assert.is(first.status, 500);
  assert.not.ok(first.text.includes('10.0.0.5'));
  assert.ok(logger.lines.some((l) => l.level === 'error' && String(l.fields.error).includes('stage bug')));
  const second = await fetchRaw(`${served.url}/`);
  assert.is(second.status, 200);
  await served.close();
  await upstream.close();
});

test('a stage setting a header value with CR/LF gets a 500, never a split request', async () => {
  const upstream = await startUpstream();
  const served = await through({
    targetBaseUrl: upstream.url,
    stages: [{ name: 'crlf', wrap: (next) => (request) => next({ ...request, headers: { ...request.headers, 'x-bad': 'a\r\nx-injected: 1' } }) }],
  });
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 500);
  assert.is(upstream.requests.length, 0);
  await served.close();
  await upstream.close();
});

test('https upstreams verify certificates by default; tls.ca trusts a private CA', async () => {
  const secure = createTlsServer({ ...tlsFixture }, (socket) => {
    socket.on('data', () => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));
  });
  const url = (await listen(secure)).replace('http:', 'https:');
  const strict = await through({ targetBaseUrl: url });
  const refused = await fetchRaw(`${strict.url}/`);
  assert.is(refused.status, 502);
  assert.ok(refused.text.includes('ERR_UPSTREAM_TLS'), refused.text);
  const trusting = await through({ targetBaseUrl: url.replace('127.0.0.1', 'localhost'), tls: { ca: tlsFixture.cert } });
  const ok = await fetchRaw(`${trusting.url}/`);
  assert.is(ok.status, 200);
  assert.is(ok.text, 'ok');
  await strict.close();
  await trusting.close();
  await new Promise((resolve) => secure.close(resolve));
});

test('errors after the response started never produce a second status line', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 30);
  });
  const served = await through({ targetBaseUrl: upstream.url });
  const { sendRaw } = await import('@relay/testkit');
  const raw = await sendRaw(served.port, 'GET / HTTP/1.1\r\nHost: gw\r\n\r\n');
  assert.is(raw.split('HTTP/1.1 ').length - 1, 1, 'exactly one status line');
  assert.not.ok(raw.endsWith('0\r\n\r\n'), 'no terminating chunk: the body does not look complete');
  await delay(10);
  await served.close();
  await upstream.close();
});

test('a stage aborting the request with ERR_DEADLINE stops the upstream attempt and the client gets 504 ERR_DEADLINE', async () => {
  let upstreamClosed = false;
  const upstream = await startUpstream((req) => {
    req.socket.on('close', () => (upstreamClosed = true));
  });
  const deadline: Stage = {
    name: 'deadline',
    wrap: (next) =>
      function deadlineStage(request) {
        const timer = setTimeout(() => request.client.abort(new RelayError('ERR_DEADLINE', 'deadline of 200 ms passed')), 200);
        return next(request).finally(() => clearTimeout(timer));
      },
  };
  const served = await through({ targetBaseUrl: upstream.url, stages: [deadline] });
  const response = await fetchRaw(`${served.url}/slow`);
  assert.is(response.status, 504);
  assert.ok(response.text.includes('ERR_DEADLINE'), response.text);
  assertNoAddress(response.text, upstream.port);
  assert.ok(await waitFor(() => upstreamClosed, 1000), 'the upstream attempt was aborted');
  assert.is(errorBody(new RelayError('ERR_DEADLINE', 'x')), '504 Gateway Timeout: the upstream service did not answer within the deadline (ERR_DEADLINE)\n');
  await served.close();
  await upstream.close();
});

test('toRelayError: a wrapper whose cause is a RelayError (got wraps errors this way) maps to that RelayError', () => {
  const original = new RelayError('ERR_READ_TIMEOUT', 'upstream read timed out after 300 ms');
  const wrapper = Object.assign(new Error('upstream read timed out after 300 ms', { cause: original }), { code: 'ERR_READ_TIMEOUT' });
  assert.is(toRelayError(wrapper), original);
  const plain = Object.assign(new Error('boom', { cause: new Error('inner') }), { code: 'ECONNRESET' });
  assert.is(toRelayError(plain).code, 'ERR_UPSTREAM_RESET', 'other causes change nothing');
});

test.run();
