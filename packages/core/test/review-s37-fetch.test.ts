// Review s37 (front doors): relay.fetch as a Next.js route handler / fetch-style runtime uses it.
// Reviewed: backpressure of the Response body toward the upstream, cancelling the Response body,
// a Request body that errors, redirects not followed, compressed bodies byte for byte,
// Set-Cookie lists, HEAD and 304 heads, status text and multi-valued headers.
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, memoryLogger, startUpstream, waitFor } from '@relay/testkit';
import { createRelay } from '../src/index.js';

const MiB = 1024 * 1024;

test('relay.fetch: a Response body the caller does not read holds the upstream back (backpressure), it is not buffered in memory', async () => {
  // docs/frameworks.md: "Bodies stream both ways"; issue 22: relay.fetch "streaming both ways (no buffering)".
  // A Next.js route handler whose client reads slowly must not make the relay pull the whole download
  // into memory: node:http's own pipe stops the upstream after a few socket buffers.
  let written = 0;
  let finished = false;
  const upstream = await startUpstream(
    (_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (written < 64 * MiB) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        finished = true;
        res.end();
      };
      res.on('close', () => (finished = true));
      pump();
    },
    { streaming: true },
  );
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  const response = await relay.fetch(new Request('http://gw/big'));
  assert.is(response.status, 200);
  const reader = response.body!.getReader();
  await reader.read(); // the caller reads one chunk, then stalls (a slow client)
  await delay(1500);
  const held = written;
  await reader.cancel();
  await waitFor(() => finished, 3000);
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
  // Socket buffers on both hops plus a stream's high-water mark are well under 8 MiB.
  assert.ok(held < 8 * MiB, `the upstream got ${(held / MiB).toFixed(1)} MiB out while the caller read one chunk`);
});

test('relay.fetch: cancelling the Response body mid-download aborts the upstream response at once', async () => {
  // docs/frameworks.md: "aborting request.signal or cancelling the response body aborts the upstream attempt".
  let upstreamClosedEarly = false;
  const upstream = await startUpstream(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('tick\n'), 20);
      res.on('close', () => {
        clearInterval(timer);
        upstreamClosedEarly = !res.writableFinished;
      });
    },
    { streaming: true },
  );
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  const response = await relay.fetch(new Request('http://gw/ticks'));
  const reader = response.body!.getReader();
  await reader.read();
  await reader.cancel();
  assert.ok(await waitFor(() => upstreamClosedEarly, 3000), 'the upstream saw its response cut');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000), 'nothing stays in flight');
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
});

test('relay.fetch: a Request body stream that errors mid-upload aborts the upstream request; the promise resolves with an error Response', async () => {
  // The Fetch standard: an errored body stream is a network error; the upstream must never take a truncated
  // chunked body as complete (nginx/Envoy reset the upstream request when the downstream body fails).
  let upstreamAborted = false;
  let upstreamSawEnd = false;
  const upstream = await startUpstream(
    (req, res) => {
      req.on('data', () => {});
      req.on('end', () => {
        upstreamSawEnd = true;
        res.end('got it');
      });
      req.on('aborted', () => (upstreamAborted = true));
      req.on('error', () => (upstreamAborted = true));
    },
    { streaming: true },
  );
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === 3) return controller.error(new Error('the client went away'));
      sent++;
      controller.enqueue(new Uint8Array(1024).fill(97));
      await delay(20);
    },
  });
  const response = await relay.fetch(new Request('http://gw/upload', { method: 'POST', body, duplex: 'half' } as RequestInit));
  assert.ok(response.status >= 400, `status ${response.status}`);
  await response.arrayBuffer().catch(() => {});
  assert.ok(await waitFor(() => upstreamAborted, 3000), 'the upstream request was aborted');
  assert.is(upstreamSawEnd, false, 'the upstream never read the cut body as complete');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
});

test('relay.fetch: redirects are not followed, gzip bytes pass untouched, Set-Cookie lines stay separate, status text and repeated headers are kept', async () => {
  // RFC 9110 §15.4: a proxy relays 3xx; reply-from / http-proxy never follow redirects nor decode bodies.
  const gz = gzipSync(Buffer.from('hello '.repeat(1000)));
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/redirect') {
      res.writeHead(302, 'Moved Here', { location: 'http://elsewhere.example/x', 'content-length': 0 });
      return void res.end();
    }
    if (req.url === '/gzip') {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'text/plain', 'content-length': gz.length });
      return void res.end(gz);
    }
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT']);
    res.setHeader('x-multi', ['one', 'two']);
    res.writeHead(201, 'Made It');
    res.end('ok');
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  const redirect = await relay.fetch(new Request('http://gw/redirect'));
  assert.equal([redirect.status, redirect.statusText, redirect.headers.get('location'), redirect.redirected], [302, 'Moved Here', 'http://elsewhere.example/x', false]);
  await redirect.arrayBuffer();
  const zipped = await relay.fetch(new Request('http://gw/gzip', { headers: { 'accept-encoding': 'gzip' } }));
  assert.is(zipped.headers.get('content-encoding'), 'gzip');
  assert.ok(Buffer.from(await zipped.arrayBuffer()).equals(gz), 'the gzip bytes are the upstream bytes');
  const cookies = await relay.fetch(new Request('http://gw/cookies'));
  assert.equal([cookies.status, cookies.statusText], [201, 'Made It']);
  assert.equal(cookies.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT']);
  assert.is(cookies.headers.get('x-multi'), 'one, two');
  await cookies.arrayBuffer();
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
});

test('relay.fetch: a HEAD answer keeps its Content-Length and has no body; a 304 keeps its ETag and has a null body', async () => {
  // RFC 9110 §9.3.2 (HEAD), §15.4.5 (304).
  const upstream = await startUpstream((req, res) => {
    if (req.headers['if-none-match'] === '"v1"') {
      res.writeHead(304, { etag: '"v1"' });
      return void res.end();
    }
    res.writeHead(200, { 'content-length': 11, etag: '"v1"', 'content-type': 'text/plain' });
    res.end(req.method === 'HEAD' ? undefined : 'hello world');
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  const head = await relay.fetch(new Request('http://gw/doc', { method: 'HEAD' }));
  assert.equal([head.status, head.headers.get('content-length')], [200, '11']);
  assert.is((await head.arrayBuffer()).byteLength, 0);
  const notModified = await relay.fetch(new Request('http://gw/doc', { headers: { 'if-none-match': '"v1"' } }));
  assert.equal([notModified.status, notModified.headers.get('etag'), notModified.body], [304, '"v1"', null]);
  assert.ok(await waitFor(() => relay.inFlight === 0, 2000));
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
});

test.run();
