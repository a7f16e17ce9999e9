import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, type MemoryLogger, type Upstream } from '@relay/testkit';
import { transformResponseStream } from '../src/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Replaces every byte `from` with `to`: chunk boundaries cannot split a match. */
function swapBytes(from: string, to: string): Transform {
  const a = from.charCodeAt(0);
  const b = to.charCodeAt(0);
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      const out = Buffer.from(chunk);
      for (let i = 0; i < out.length; i++) if (out[i] === a) out[i] = b;
      callback(null, out);
    },
  });
}

/** Fails on chunk number `failAt` (1-based), passing the ones before it. */
function failingAt(failAt: number, how: 'throw' | 'callback'): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      seen++;
      if (seen < failAt) return callback(null, chunk);
      if (how === 'throw') throw new Error('rewrite failed');
      callback(new Error('rewrite failed'));
    },
  });
}

const htmlChunk = Buffer.from(`<p>${'a'.repeat(64 * 1024 - 8)}</p>\n`);

/** Writes `chunks` HTML chunks of 64 KiB with backpressure, optionally gzip-encoded. */
async function htmlUpstream(chunks: number, gzip = false): Promise<Upstream> {
  return startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/html', ...(gzip ? { 'content-encoding': 'gzip' } : { 'content-length': chunks * htmlChunk.length }), etag: '"1"' });
    const out = gzip ? zlib.createGzip() : res;
    if (gzip) out.pipe(res);
    let left = chunks;
    const write = (): void => {
      while (left > 0) {
        left--;
        if (left === 0) return void out.end(htmlChunk);
        if (!out.write(htmlChunk)) return void out.once('drain', write);
      }
    };
    res.on('close', () => (left = 0));
    write();
  });
}

async function withRelay(upstream: Upstream, stages: Stage[], run: (url: string, logger: MemoryLogger) => Promise<void>): Promise<void> {
  const logger = memoryLogger();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages }));
  try {
    await run(relay.url, logger);
  } finally {
    await relay.close();
    await upstream.close();
  }
}

test('a 50 MB HTML stream is transformed with flat memory', async () => {
  const chunks = 800; // 800 × 64 KiB = 50 MiB
  const upstream = await htmlUpstream(chunks);
  await withRelay(upstream, [transformResponseStream(() => swapBytes('a', 'b'))], async (url) => {
    gc();
    const baseline = process.memoryUsage();
    const samples: number[] = [];
    let received = 0;
    let wrong = 0;
    const result = await new Promise<{ headers: IncomingMessage['headers']; complete: boolean }>((resolve, reject) => {
      const req = request(`${url}/page`, { agent: false }, (res) => {
        let sinceSample = 0;
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (chunk.includes(0x61)) wrong++;
          sinceSample += chunk.length;
          // About every 2 MB: the live heap and buffers after a full GC, so garbage does not count. The
          // client pauses meanwhile, and reads after 20 ms: V8 frees buffers on a background thread.
          if (sinceSample >= 2 * 2 ** 20) {
            sinceSample = 0;
            res.pause();
            gc();
            setTimeout(() => {
              const now = process.memoryUsage();
              samples.push(now.heapUsed + now.arrayBuffers - baseline.heapUsed - baseline.arrayBuffers);
              res.resume();
            }, 20);
          }
        });
        res.on('end', () => resolve({ headers: res.headers, complete: res.complete }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    assert.ok(result.complete);
    assert.is(received, chunks * htmlChunk.length);
    assert.is(wrong, 0, 'every "a" became a "b"');
    assert.is(result.headers['content-length'], undefined);
    assert.is(result.headers.etag, undefined);
    // Buffering the body would hold up to 50 MiB while it is sent (about 23 MiB at the median sample);
    // streaming holds what fills the sockets and streams while the client pauses (about 7 MiB here,
    // flat from the first sample to the last). A sample can lag behind its GC on a busy machine: the
    // median is the measure, the largest sample only has to stay below the body.
    samples.sort((x, y) => x - y);
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    const median = samples[Math.floor(samples.length / 2)]!;
    assert.ok(samples.length >= 20, `${samples.length} samples`);
    assert.ok(median < 16 * 2 ** 20, `live memory grew by ${mib(median)} MiB (median) while 50 MiB went through`);
    assert.ok(samples.at(-1)! < 40 * 2 ** 20, `live memory grew by ${mib(samples.at(-1)!)} MiB at most`);
  });
});

test('a gzip HTML stream is decoded, transformed and encoded again with gzip', async () => {
  const upstream = await htmlUpstream(8, true);
  await withRelay(upstream, [transformResponseStream(() => swapBytes('a', 'c'))], async (url) => {
    const response = await fetchRaw(`${url}/page`);
    assert.is(response.headers['content-encoding'], 'gzip');
    const text = zlib.gunzipSync(response.body).toString();
    assert.is(text.length, 8 * htmlChunk.length);
    assert.ok(!text.includes('a') && text.includes('c'));
  });
});

test('deflate is read raw or zlib-wrapped, as transformResponse and browsers read it, and sent zlib-wrapped', async () => {
  // Raw deflate (no zlib wrapper) is what old IIS and some PHP send for `deflate`; a first chunk of one byte cannot
  // tell which yet, and waits for the second.
  const page = '<p>hello http://api:8000/</p>'.repeat(200);
  for (const encode of [zlib.deflateRawSync, zlib.deflateSync]) {
    const encoded = encode(page);
    const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'deflate' });
      res.write(encoded.subarray(0, 1));
      setTimeout(() => res.end(encoded.subarray(1)), 20);
    });
    await withRelay(upstream, [transformResponseStream(() => swapBytes('h', 'H'))], async (url) => {
      const response = await fetchRaw(`${url}/page`, { headers: { 'accept-encoding': 'deflate' } });
      assert.is(response.status, 200, `${encode.name}: ${response.text}`);
      assert.is(response.headers['content-encoding'], 'deflate');
      assert.is(zlib.inflateSync(response.body).toString(), page.replaceAll('h', 'H'));
    });
  }
});

test('a Transform that fails before its first output gives 502, whether it throws or calls back an error', async () => {
  for (const how of ['throw', 'callback'] as const) {
    const upstream = await htmlUpstream(4);
    await withRelay(upstream, [transformResponseStream(() => failingAt(1, how))], async (url, logger) => {
      const response = await fetchRaw(`${url}/page`);
      assert.is(response.status, 502, how);
      assert.match(response.text, /ERR_UPSTREAM_PROTOCOL/);
      assert.ok(logger.lines.some((line) => line.level === 'error' && line.message.includes('before the head')));
    });
  }
});

test('a Transform that fails after the head cuts the response short: never a body that looks complete', async () => {
  for (const how of ['throw', 'callback'] as const) {
    const upstream = await htmlUpstream(40);
    await withRelay(upstream, [transformResponseStream(() => failingAt(5, how))], async (url) => {
      const response = await fetchRaw(`${url}/page`);
      assert.is(response.status, 200, how);
      assert.is(response.complete, false);
      assert.ok(response.body.length < 40 * htmlChunk.length);
    });
  }
});

test('an upstream that fails before the first output keeps its own error: not blamed on the transform', async () => {
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' });
    res.write(Buffer.from([0x1f, 0x8b, 0x08, 0]));
    setTimeout(() => res.destroy(), 20);
  });
  await withRelay(upstream, [transformResponseStream(() => swapBytes('a', 'b'))], async (url, logger) => {
    const response = await fetchRaw(`${url}/page`);
    assert.is(response.status, 502);
    assert.match(response.text, /ERR_UPSTREAM_RESET/);
    assert.not.ok(logger.lines.some((line) => line.message.includes('transform failed')));
  });
});

test('a factory returning null, and other types, leave the body alone', async () => {
  const upstream = await htmlUpstream(2);
  await withRelay(upstream, [transformResponseStream(() => null)], async (url) => {
    const response = await fetchRaw(`${url}/page`);
    assert.is(response.headers['content-length'], String(2 * htmlChunk.length));
    assert.is(response.headers.etag, '"1"');
  });
  const other = await htmlUpstream(2);
  await withRelay(other, [transformResponseStream(() => swapBytes('a', 'b'), { types: ['text/css'] })], async (url) => {
    const response = await fetchRaw(`${url}/page`);
    assert.ok(response.text.includes('a'));
  });
});

test('bad options throw when the stage is built', () => {
  assert.throws(() => transformResponseStream(null as never), /the Transform factory must be a function/);
  assert.throws(() => transformResponseStream(() => null, { as: 'text' } as never), /unknown option "as"/);
});

test.run();
