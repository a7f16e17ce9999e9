import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream, type Upstream } from '@relay/testkit';
import { compress, type CompressOptions } from '../src/index.js';

const json = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })) });

/** An upstream answering `/json` with `json`, extra headers from the `x-set` request header (JSON). */
async function jsonUpstream(): Promise<Upstream> {
  return startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const extra = JSON.parse(String(req.headers['x-set'] ?? '{}')) as Record<string, string>;
    const status = Number(req.headers['x-status'] ?? 200);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), etag: '"v1"', 'accept-ranges': 'bytes', ...extra });
    res.end(req.method === 'HEAD' || status === 204 || status === 304 ? undefined : json);
  });
}

/** A stage that keeps the upstream from compressing: drops Accept-Encoding on the way out, in place. */
const noUpstreamCompression: Stage = {
  name: 'no-upstream-compression',
  wrap: (next) =>
    function noUpstreamCompressionStage(request) {
      delete request.headers['accept-encoding'];
      return next(request);
    },
};

async function withRelay(options: CompressOptions, run: (url: string, upstream: Upstream) => Promise<void>): Promise<void> {
  const upstream = await jsonUpstream();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress(options), noUpstreamCompression] }));
  try {
    await run(relay.url, upstream);
  } finally {
    await relay.close();
    await upstream.close();
  }
}

test('br is chosen when the client accepts both, the body decodes to the original, headers follow', async () => {
  // A stage inside drops Accept-Encoding toward the upstream: compress() decided on the client's header.
  await withRelay({}, async (url, upstream) => {
    const response = await fetchRaw(`${url}/json`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    assert.is(response.status, 200);
    assert.is(response.headers['content-encoding'], 'br');
    assert.is(response.headers.vary, 'Accept-Encoding');
    assert.is(response.headers['content-length'], undefined);
    assert.is(response.headers['accept-ranges'], undefined);
    assert.is(response.headers.etag, 'W/"v1"');
    assert.ok(response.body.length < json.length / 3, `compressed to ${response.body.length} bytes`);
    assert.is(zlib.brotliDecompressSync(response.body).toString(), json);
    assert.is(upstream.requests[0]!.headers['accept-encoding'], undefined);
  });
});

test('gzip when the client prefers it; identity when it accepts neither; Vary merges with the upstream one', async () => {
  await withRelay({}, async (url) => {
    const gzip = await fetchRaw(`${url}/json`, { headers: { 'accept-encoding': 'br;q=0.5, gzip' } });
    assert.is(gzip.headers['content-encoding'], 'gzip');
    assert.is(zlib.gunzipSync(gzip.body).toString(), json);
    const plain = await fetchRaw(`${url}/json`, { headers: { 'accept-encoding': 'identity;q=0, deflate', 'x-set': '{"vary":"Origin"}' } });
    assert.is(plain.headers['content-encoding'], undefined);
    assert.is(plain.headers['content-length'], String(json.length));
    assert.is(plain.headers.vary, 'Origin, Accept-Encoding');
    assert.is(plain.text, json);
    const star = await fetchRaw(`${url}/json`, { headers: { 'accept-encoding': '*' } });
    assert.is(star.headers['content-encoding'], 'br');
  });
});

test('never double-encodes, honours no-transform, skips small bodies, other types, 204 and 206; no body on a HEAD or 304', async () => {
  const gzipped = zlib.gzipSync(json);
  const upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/gzipped') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gzipped.length });
      res.end(gzipped);
    } else if (req.url === '/partial') {
      res.writeHead(206, { 'content-type': 'application/json', 'content-range': `bytes 0-1999/${json.length}`, 'content-length': 2000 });
      res.end(json.slice(0, 2000));
    } else if (req.url === '/png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 4096 });
      res.end(Buffer.alloc(4096));
    } else if (req.url === '/small') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 });
      res.end('{"ok":true}');
    } else {
      const status = Number(req.url!.slice(1)) || 200;
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': req.url === '/nt' ? 'no-transform' : 'public' });
      res.end(status === 204 || status === 304 || req.method === 'HEAD' ? undefined : json);
    }
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress()] }));
  try {
    const get = (path: string, method = 'GET') => fetchRaw(`${relay.url}${path}`, { method, headers: { 'accept-encoding': 'gzip, br' } });
    const already = await get('/gzipped');
    assert.is(already.headers['content-encoding'], 'gzip');
    assert.ok(already.body.equals(gzipped), 'passed through byte for byte');
    for (const path of ['/nt', '/partial', '/png', '/small']) {
      const response = await get(path);
      assert.is(response.headers['content-encoding'], undefined, path);
      assert.is(response.headers.vary, undefined, path);
    }
    // A 304 carries the 200's validators and Vary, never Content-Encoding (compress-conditional.test.ts).
    for (const path of ['/204', '/304']) {
      const response = await get(path);
      assert.is(response.headers['content-encoding'], undefined, path);
      assert.is(response.body.length, 0);
    }
    const head = await get('/200', 'HEAD');
    assert.is(head.body.length, 0, 'HEAD gets no body, whatever its headers say');
  } finally {
    await relay.close();
    await upstream.close();
  }
});

/**
 * An SSE upstream that sends event 1, then event 2 only once `release()` is called; the client
 * decodes what arrives chunk by chunk and releases event 2 only after it has read event 1.
 */
async function sseRoundTrip(acceptEncoding: string): Promise<{ coding: string | undefined; order: string[] }> {
  const order: string[] = [];
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('id: 1\ndata: first event\n\n');
    order.push('upstream sent 1');
    void released.then(() => {
      order.push('upstream sent 2');
      res.end('id: 2\ndata: second event\n\n');
    });
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress({ threshold: 0 })] }));
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`event 1 never arrived on its own: ${order.join(', ')}`)), 10_000);
      const req = request(`${relay.url}/events`, { headers: { 'accept-encoding': acceptEncoding }, agent: false }, (res) => {
        const coding = res.headers['content-encoding'];
        const decoder = coding === 'br' ? zlib.createBrotliDecompress() : zlib.createGunzip();
        let text = '';
        decoder.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes('first event') && !order.includes('client read 1')) {
            order.push('client read 1');
            release();
          }
          if (text.includes('second event') && !order.includes('client read 2')) order.push('client read 2');
        });
        decoder.on('end', () => {
          clearTimeout(timer);
          resolve({ coding: typeof coding === 'string' ? coding : undefined, order });
        });
        decoder.on('error', reject);
        res.pipe(decoder);
      });
      req.on('error', reject);
      req.end();
    });
  } finally {
    release();
    await relay.close();
    await upstream.close();
  }
}

test('an event stream through compress() arrives event by event, gzip and br', async () => {
  for (const coding of ['gzip', 'br']) {
    const { coding: used, order } = await sseRoundTrip(coding);
    assert.is(used, coding);
    assert.equal(order, ['upstream sent 1', 'client read 1', 'upstream sent 2', 'client read 2']);
  }
});

test('a client that goes away mid-stream tears down the encoder and the upstream response', async () => {
  let upstreamClosed = false;
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: hello\n\n');
    res.on('close', () => (upstreamClosed = true));
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress()] }));
  try {
    await new Promise<void>((resolve, reject) => {
      const req = request(`${relay.url}/events`, { headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      req.on('close', resolve);
      setTimeout(() => reject(new Error('no data')), 10_000).unref();
      req.end();
    });
    const { waitFor } = await import('@relay/testkit');
    assert.ok(await waitFor(() => upstreamClosed, 5_000), 'the upstream response was closed');
    assert.ok(await waitFor(() => relay.relay.inFlight === 0, 5_000));
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test.run();
