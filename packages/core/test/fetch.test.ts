import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, startUpstream, waitFor } from '@relay/testkit';
import { createRelay } from '../src/index.js';

// Issue 22: relay.fetch(request: Request): Promise<Response>, streaming both ways.

const MiB = 1024 * 1024;

/** A request body of `total` bytes made chunk by chunk, never held whole; `done` is set after the last chunk. */
function generated(total: number, progress: { done: boolean }): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(64 * 1024).fill(120);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) {
        progress.done = true;
        return controller.close();
      }
      controller.enqueue(chunk);
      sent += chunk.length;
    },
  });
}

test('relay.fetch maps the path under the mount, writes forwarding headers from the Request and the given address, and answers a Response', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, mountPath: '/api' });
  const response = await relay.fetch(new Request('https://gw.example/api/items?x=1', { headers: { 'x-custom': 'yes', connection: 'x-custom' } }), { address: '10.1.2.3' });
  assert.is(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /json/);
  const seen = upstream.requests[0]!;
  assert.is(seen.url, '/items?x=1');
  assert.is(seen.headers['x-forwarded-for'], '10.1.2.3');
  assert.is(seen.headers['x-forwarded-host'], 'gw.example');
  assert.is(seen.headers['x-forwarded-proto'], 'https');
  assert.is(seen.headers['x-custom'], undefined, 'Connection-listed headers never pass');
  assert.ok((await response.text()).includes('/items?x=1'));
  const refused = await relay.fetch(new Request('https://gw.example/api/..%2fadmin'));
  assert.equal([refused.status, (await refused.text()).trim()], [400, '400 Bad Request: the request path is not allowed (ERR_BAD_PATH)']);
  assert.is((await relay.fetch(new Request('https://gw.example/elsewhere'))).status, 404);
  await relay.shutdown();
  await upstream.close();
});

test('relay.fetch streams a 50 MiB upload and a 50 MiB download with flat memory', async () => {
  let received = 0;
  const progress = { done: false };
  let firstByteBeforeLastChunk: boolean | null = null;
  let upstreamDone = false;
  const upstream = await startUpstream(
    (req, res) => {
      if (req.method === 'POST') {
        req.on('data', (chunk: Buffer) => {
          firstByteBeforeLastChunk ??= !progress.done;
          received += chunk.length;
        });
        req.on('end', () => res.end(String(received)));
        return;
      }
      const chunk = Buffer.alloc(64 * 1024, 121);
      let sent = 0;
      const pump = () => {
        while (sent < 50 * MiB) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        upstreamDone = true;
        res.end();
      };
      pump();
    },
    { streaming: true },
  );
  const relay = createRelay({ targetBaseUrl: upstream.url });
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const upload = await relay.fetch(new Request('http://gw/upload', { method: 'POST', body: generated(50 * MiB, progress), duplex: 'half' } as RequestInit));
  assert.is(await upload.text(), String(50 * MiB));
  assert.is(firstByteBeforeLastChunk, true, 'the upstream read the upload while it was still being made');
  const download = await relay.fetch(new Request('http://gw/download'));
  let downloaded = 0;
  let firstChunkBeforeUpstreamDone: boolean | null = null;
  for await (const chunk of download.body as unknown as AsyncIterable<Uint8Array>) {
    firstChunkBeforeUpstreamDone ??= !upstreamDone;
    downloaded += chunk.length;
  }
  clearInterval(sampler);
  assert.is(downloaded, 50 * MiB);
  assert.is(firstChunkBeforeUpstreamDone, true, 'the caller read the download while the upstream was still sending');
  const growth = (peak - before) / MiB;
  // Garbage chunks come and go with the collector; holding either body whole would add its 50 MiB on top.
  assert.ok(growth < 90, `RSS grew ${growth.toFixed(1)} MiB while 100 MiB went through`);
  await relay.shutdown();
  await upstream.close();
});

/** The Request with reads of its `body` counted, as a lazy Request (@hono/node-server's) pays for each. */
function watched(request: Request): { request: Request; reads: () => number } {
  let reads = 0;
  const body = Object.getOwnPropertyDescriptor(Request.prototype, 'body')!.get!;
  Object.defineProperty(request, 'body', {
    get() {
      reads++;
      return body.call(request);
    },
  });
  return { request, reads: () => reads };
}

test('relay.fetch never reads the body of a GET or HEAD Request, and streams a POST body chunked', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url });
  for (const method of ['GET', 'HEAD']) {
    const { request, reads } = watched(new Request('http://gw/read', { method }));
    const response = await relay.fetch(request);
    assert.is(response.status, 200, method);
    await response.arrayBuffer();
    assert.is(reads(), 0, `${method}: body not read`);
  }
  const post = watched(new Request('http://gw/post', { method: 'POST', body: 'hello' }));
  const answered = await relay.fetch(post.request);
  assert.is(answered.status, 200);
  assert.is(JSON.parse(await answered.text()).body, 'hello');
  assert.ok(post.reads() > 0, 'a POST body is read');
  // A Request's own body sets no Content-Length header: the relay frames it as chunked.
  const seen = upstream.requests.at(-1)!;
  assert.equal([seen.method, seen.headers['content-length'], seen.headers['transfer-encoding']], ['POST', undefined, 'chunked']);
  assert.equal(upstream.requests.map((request) => request.body.length), [0, 0, 5]);
  await relay.shutdown();
  await upstream.close();
});

test('relay.fetch frames the body it really sends: a Content-Length no body backs never reaches the upstream; a wrong length fails', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, timeout: { read: 5_000 } });
  // A GET whose headers claim a body (the Fetch standard gives GET none): no framing goes upstream,
  // and the kept-alive connection still serves the next request.
  for (const headers of [{ 'content-length': '5' }, { 'transfer-encoding': 'chunked' }] as Array<Record<string, string>>) {
    const response = await relay.fetch(new Request('http://gw/claims', { headers }));
    assert.is(response.status, 200);
    await response.arrayBuffer();
  }
  assert.equal(
    upstream.requests.map((r) => [r.headers['content-length'], r.headers['transfer-encoding'], r.body.length]),
    [
      [undefined, undefined, 0],
      [undefined, undefined, 0],
    ],
  );
  // A POST with a true Content-Length keeps it.
  const exact = await relay.fetch(new Request('http://gw/exact', { method: 'POST', body: 'hello', headers: { 'content-length': '5' } }));
  assert.is(exact.status, 200);
  await exact.arrayBuffer();
  assert.equal([upstream.requests.at(-1)!.headers['content-length'], upstream.requests.at(-1)!.body.toString()], ['5', 'hello']);
  // A length the body does not keep to fails the request instead of desynchronizing the connection.
  for (const length of ['9', '2']) {
    const before = upstream.requests.length;
    const started = Date.now();
    const wrong = await relay.fetch(new Request('http://gw/wrong', { method: 'POST', body: 'hello', headers: { 'content-length': length } }));
    assert.is(wrong.status, 400, `Content-Length ${length}`);
    assert.match(await wrong.text(), /ERR_BAD_REQUEST/);
    assert.ok(Date.now() - started < 4_000, 'failed at once, not after the read timeout');
    assert.is(upstream.requests.length, before, 'the upstream answered no request made of the wrong bytes');
  }
  const after = await relay.fetch(new Request('http://gw/after'));
  assert.is(after.status, 200, 'the relay and its upstream connections still serve');
  await after.arrayBuffer();
  await relay.shutdown();
  await upstream.close();
});

test('a response body the upstream cuts short errors the Response body: it never reads as complete', async () => {
  const upstream = await startUpstream(
    (_req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('x'.repeat(100));
      setTimeout(() => res.socket?.destroy(), 50);
    },
    { streaming: true },
  );
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  const response = await relay.fetch(new Request('http://gw/cut'));
  assert.is(response.status, 200);
  const outcome = await response.text().then(
    (text) => `complete: ${text.length}`,
    (error: Error) => `failed: ${error.name}`,
  );
  assert.match(outcome, /^failed: /);
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
  await relay.shutdown();
  await upstream.close();
});

test('aborting the Request’s signal aborts the upstream attempt; nothing stays in flight', async () => {
  const closed: string[] = [];
  const upstream = await startUpstream(
    (req, res) => {
      res.writeHead(200);
      res.write('first');
      req.on('close', () => closed.push(req.url ?? ''));
      // Then nothing: only the caller's abort ends it.
    },
    { streaming: true },
  );
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger });
  const controller = new AbortController();
  const response = await relay.fetch(new Request('http://gw/stream', { signal: controller.signal }));
  const reader = response.body!.getReader();
  const first = await reader.read();
  assert.is(new TextDecoder().decode(first.value), 'first');
  controller.abort();
  assert.ok(await waitFor(() => closed.includes('/stream'), 3000), 'the upstream connection was closed');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
  // Cancelling the response body does the same.
  const second = await relay.fetch(new Request('http://gw/cancelled'));
  await second.body!.cancel();
  assert.ok(await waitFor(() => closed.includes('/cancelled'), 3000));
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
  await relay.shutdown();
  await upstream.close();
});

test.run();
