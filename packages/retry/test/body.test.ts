import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor, type ClientResponse } from '@relay/testkit';
import { createRelay } from '@relay/core';
import { retry } from '../src/index.js';
import { idempotentMethods } from '../src/policy.js';

const withPost = [...idempotentMethods, 'POST'];

/** An upstream that answers 503 to the first request and echoes the body length to the rest. */
async function busyOnce() {
  return startUpstream((_req, res, seen) => {
    if (upstream.requests.length === 1) {
      res.writeHead(503, { 'content-length': 4 }).end('busy');
      return;
    }
    res.end(`got ${seen.body.length}`);
  });
}
let upstream: Awaited<ReturnType<typeof startUpstream>>;

/** Sends a request whose body is written in `chunks` without a Content-Length (chunked). */
function postChunked(url: string, chunks: Buffer[]): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/octet-stream' } });
    req.on('error', reject);
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, statusMessage: '', headers: res.headers, rawHeaders: res.rawHeaders, body, text: body.toString(), complete: true });
      });
    });
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

test('a POST is not retried by default: the 503 passes on and the upstream sees one request', async () => {
  upstream = await busyOnce();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, backoffFactor: 10 })] }));
  const response = await fetchRaw(`${served.url}/orders`, { method: 'POST', body: '{"item":42}', headers: { 'content-type': 'application/json' } });
  assert.is(response.status, 503);
  assert.is(response.text, 'busy');
  assert.is(upstream.requests.length, 1);
  await served.close();
  await upstream.close();
});

test('a POST opted in is retried with its full body and the right Content-Length, every time', async () => {
  upstream = await startUpstream((_req, res) => {
    if (upstream.requests.length < 3) res.writeHead(502, { 'content-length': 0 }).end();
    else res.end('created');
  });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 3, backoffFactor: 10, methods: withPost })] }),
  );
  const body = JSON.stringify({ item: 42, note: 'x'.repeat(5000) });
  const response = await fetchRaw(`${served.url}/orders`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  assert.is(response.status, 200);
  assert.is(response.text, 'created');
  assert.is(upstream.requests.length, 3);
  for (const seen of upstream.requests) {
    assert.is(seen.body.toString(), body, 'the whole original body');
    assert.is(seen.headers['content-length'], String(Buffer.byteLength(body)));
    assert.is(seen.headers['content-type'], 'application/json');
    assert.is(seen.headers['transfer-encoding'], undefined);
  }
  await served.close();
  await upstream.close();
});

test('a small chunked body is buffered and sent with its Content-Length on every attempt', async () => {
  upstream = await busyOnce();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 1, backoffFactor: 10, methods: ['PUT', 'POST'] })] }),
  );
  const chunks = [Buffer.from('first,'), Buffer.from('second,'), Buffer.from('third')];
  const response = await postChunked(`${served.url}/upload`, chunks);
  assert.is(response.status, 200);
  assert.is(response.text, 'got 18');
  assert.is(upstream.requests.length, 2);
  for (const seen of upstream.requests) {
    assert.is(seen.body.toString(), 'first,second,third');
    assert.is(seen.headers['content-length'], '18');
    assert.is(seen.headers['transfer-encoding'], undefined);
  }
  await served.close();
  await upstream.close();
});

test('a 1 MiB POST is never retried, with or without a Content-Length; the upstream gets it whole', async () => {
  upstream = await startUpstream((_req, res) => res.writeHead(502, { 'content-length': 3 }).end('bad'));
  const logger = memoryLogger();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, logger, stages: [retry({ maxRetries: 3, backoffFactor: 10, methods: withPost })] }),
  );
  const big = Buffer.alloc(1024 * 1024, 'a');
  const sized = await fetchRaw(`${served.url}/big`, { method: 'POST', body: big });
  assert.is(sized.status, 502);
  assert.is(sized.text, 'bad', 'the upstream response, as sent');
  assert.is(upstream.requests.length, 1);
  assert.ok(upstream.requests[0]!.body.equals(big));
  const chunked = await postChunked(`${served.url}/big`, Array.from({ length: 16 }, () => Buffer.alloc(64 * 1024, 'b')));
  assert.is(chunked.status, 502);
  assert.is(upstream.requests.length, 2, 'one request each');
  assert.is(upstream.requests[1]!.body.length, 1024 * 1024);
  assert.ok(upstream.requests[1]!.body.every((byte) => byte === 98));
  assert.is(upstream.requests[1]!.headers['transfer-encoding'], 'chunked', 'a body too large to buffer streams as sent');
  assert.not.ok(logger.lines.some((l) => l.message === 'retrying upstream request'));
  await served.close();
  await upstream.close();
});

test('a body over maxReplayBytes starts flowing upstream before the client has sent all of it', async () => {
  let received = 0;
  upstream = await startUpstream(
    (req, res) => {
      req.on('data', (chunk: Buffer) => (received += chunk.length));
      req.on('end', () => res.end(`got ${received}`));
    },
    { streaming: true },
  );
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, methods: withPost, maxReplayBytes: 16 * 1024 })] }),
  );
  for (const sized of [true, false]) {
    received = 0;
    const half = Buffer.alloc(100 * 1024, 'c');
    const req = httpRequest(`${served.url}/stream`, { method: 'POST', agent: false, headers: sized ? { 'content-length': 2 * half.length } : {} });
    const answer = new Promise<string>((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk));
        res.on('end', () => resolve(text));
      });
    });
    req.write(half);
    assert.ok(await waitFor(() => received > 0, 3000), `${sized ? 'sized' : 'chunked'}: the upstream got bytes before the body was complete`);
    req.end(half);
    assert.is(await answer, `got ${2 * half.length}`);
  }
  await served.close();
  await upstream.close();
});

test('a client that leaves while its body is being buffered ends the request; the upstream sees nothing', async () => {
  upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, methods: withPost })] }));
  const socket = connect(served.port, '127.0.0.1');
  socket.write('POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\npartial');
  await delay(100);
  socket.destroy();
  assert.ok(await waitFor(() => served.relay.inFlight === 0), 'nothing left in flight');
  assert.is(upstream.requests.length, 0);
  const after = await fetchRaw(`${served.url}/again`, { method: 'POST', body: 'next' });
  assert.is(after.status, 200, 'the relay keeps serving');
  await served.close();
  await upstream.close();
});

test('a client that stalls its body while it is buffered gets 408 ERR_CLIENT_TIMEOUT after the write timeout, as without the stage', async () => {
  upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, timeout: { write: 300 }, stages: [retry({ maxRetries: 2, methods: withPost })] }),
  );
  const socket = connect(served.port, '127.0.0.1');
  let raw = '';
  socket.on('data', (chunk) => (raw += chunk));
  socket.write('POST /x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\npartial');
  assert.ok(await waitFor(() => raw.includes('\r\n\r\n'), 3000), 'an answer came');
  assert.match(raw, /^HTTP\/1\.1 408 /);
  assert.ok(raw.includes('ERR_CLIENT_TIMEOUT'));
  assert.is(upstream.requests.length, 0);
  socket.destroy();
  await served.close();
  await upstream.close();
});

test('a retried-past response is drained when small (its connection is reused) and destroyed when large', async () => {
  const sockets = new Set<unknown>();
  let closedSockets = 0;
  upstream = await startUpstream((req, res) => {
    if (!sockets.has(req.socket)) {
      sockets.add(req.socket);
      req.socket.on('close', () => closedSockets++);
    }
    const count = upstream.requests.length;
    if (req.url === '/small' && count === 1) res.writeHead(503, { 'content-length': 5 }).end('small');
    else if (req.url === '/large' && count === 3) {
      // A large error body of unknown length, still being written: never read to the end.
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.write(Buffer.alloc(256 * 1024));
    } else res.end('ok');
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 1, backoffFactor: 50 })] }));
  assert.is((await fetchRaw(`${served.url}/small`)).text, 'ok');
  assert.is(sockets.size, 1, 'the drained connection carried the retry too');
  assert.is((await fetchRaw(`${served.url}/large`)).text, 'ok');
  assert.ok(await waitFor(() => closedSockets >= 1, 2000), 'the connection of the large retried-past response was closed');
  await served.close();
  await upstream.close();
});

test.run();
