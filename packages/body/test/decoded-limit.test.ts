// transformRequestStream decodes a client's gzip/br/deflate upload to transform it: bodyLimit() counts the bytes as
// sent, and a few kilobytes of gzip decode to gigabytes. The decoded body is bounded by maxDecodedBytes (default
// 1 MiB, as bodyLimit's maxBytes): past it, 413.
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { retry } from '@relay/retry';
import { delay, fetchRaw, memoryLogger, serveRelay, startUpstream, type MemoryLogger } from '@relay/testkit';
import { bodyLimit, transformRequestStream, transformResponseStream, type RequestStreamTransformOptions } from '../src/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MiB = 2 ** 20;

/** 50 MiB of zeros, gzipped (about 50 KB), made without holding the 50 MiB. */
function gzipBomb(mebibytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gzip = zlib.createGzip();
    const out: Buffer[] = [];
    gzip.on('data', (chunk: Buffer) => out.push(chunk));
    gzip.on('end', () => resolve(Buffer.concat(out)));
    gzip.on('error', reject);
    const zeros = Buffer.alloc(MiB);
    for (let i = 0; i < mebibytes; i++) gzip.write(zeros);
    gzip.end();
  });
}

function passThrough(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      callback(null, chunk);
    },
  });
}

interface Decoded {
  bytes: number;
  ended: boolean;
}

/** An upstream that gunzips each request body as it streams and records how many bytes it decoded. */
async function withRelay(stages: Stage[], run: (url: string, seen: Decoded[], logger: MemoryLogger) => Promise<void>): Promise<void> {
  const seen: Decoded[] = [];
  const upstream = await startUpstream(
    (req: IncomingMessage, res: ServerResponse) => {
      const decoded: Decoded = { bytes: 0, ended: false };
      seen.push(decoded);
      const plain = req.headers['content-encoding'] === 'gzip' ? req.pipe(zlib.createGunzip()) : req;
      plain.on('data', (chunk: Buffer) => (decoded.bytes += chunk.length));
      plain.on('end', () => {
        decoded.ended = true;
        res.writeHead(200, { 'content-type': 'text/plain' }).end(String(decoded.bytes));
      });
      plain.on('error', () => res.destroy());
      req.on('error', () => {});
    },
    { streaming: true },
  );
  const logger = memoryLogger();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages }));
  try {
    await run(relay.url, seen, logger);
  } finally {
    await relay.close();
    await upstream.close();
  }
}

const upload = (url: string, body: Buffer, encoding?: string) =>
  fetchRaw(`${url}/upload`, { method: 'POST', headers: { 'content-type': 'text/html', ...(encoding === undefined ? {} : { 'content-encoding': encoding }) }, body });

const stream = (options?: RequestStreamTransformOptions) => transformRequestStream(passThrough, options);

test('a 50 MiB gzip bomb gets 413 once it decodes past the default 1 MiB; the upstream never gets more', async () => {
  const bomb = await gzipBomb(50);
  assert.ok(bomb.length < 100 * 1024, `the bomb is ${bomb.length} bytes`);
  await withRelay([bodyLimit(), stream()], async (url, seen, logger) => {
    const started = Date.now();
    const response = await upload(url, bomb, 'gzip');
    assert.is(response.status, 413);
    assert.is(response.headers.connection, 'close');
    assert.match(response.text, /ERR_BODY_TOO_LARGE/);
    assert.ok(Date.now() - started < 10_000, `answered after ${Date.now() - started} ms`);
    for (const decoded of seen) {
      assert.not.ok(decoded.ended, 'the upstream never got a whole body');
      assert.ok(decoded.bytes <= MiB, `the upstream decoded ${decoded.bytes} bytes`);
    }
    assert.ok(logger.lines.some((line) => line.level === 'warn' && /gzip body decodes to more than 1048576 bytes/.test(line.message)));
  });
});

/**
 * A pass-through that samples the live heap and buffers every 4 MiB of decoded bytes: it holds its chunk, runs a full
 * GC and reads the figures 20 ms later (V8 frees buffers on a background thread), so garbage does not count.
 */
function sampling(samples: number[], baseline: NodeJS.MemoryUsage): Transform {
  let sinceSample = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      sinceSample += chunk.length;
      if (sinceSample < 4 * MiB) return callback(null, chunk);
      sinceSample = 0;
      gc();
      setTimeout(() => {
        const now = process.memoryUsage();
        samples.push(now.heapUsed + now.arrayBuffers - baseline.heapUsed - baseline.arrayBuffers);
        callback(null, chunk);
      }, 20);
    },
  });
}

test('with maxDecodedBytes: Infinity the same bomb streams through whole, with flat memory', async () => {
  const bomb = await gzipBomb(50);
  const samples: number[] = [];
  gc();
  const baseline = process.memoryUsage();
  await withRelay([transformRequestStream(() => sampling(samples, baseline), { types: ['text/html'], maxDecodedBytes: Infinity })], async (url, seen) => {
    const response = await upload(url, bomb, 'gzip');
    assert.is(response.status, 200);
    assert.is(response.text, String(50 * MiB));
    assert.equal(seen, [{ bytes: 50 * MiB, ended: true }]);
  });
  // Decoding whole would hold 50 MiB; streaming holds what fills the pipes. The median is the measure (a sample can
  // lag behind its GC on a busy machine); the largest only has to stay well below the body.
  samples.sort((x, y) => x - y);
  const mib = (bytes: number) => (bytes / MiB).toFixed(1);
  const median = samples[Math.floor(samples.length / 2)]!;
  assert.ok(samples.length >= 10, `${samples.length} samples`);
  assert.ok(median < 16 * MiB, `live memory grew by ${mib(median)} MiB (median) while 50 MiB were decoded`);
  assert.ok(samples.at(-1)! < 40 * MiB, `live memory grew by ${mib(samples.at(-1)!)} MiB at most`);
});

test('a compressed body within maxDecodedBytes passes whole; a body sent as it is is not counted (that is bodyLimit\'s job)', async () => {
  const twoMiB = await gzipBomb(2);
  await withRelay([stream({ maxDecodedBytes: 4 * MiB })], async (url, seen) => {
    assert.is((await upload(url, twoMiB, 'gzip')).status, 200);
    assert.equal(seen.at(-1), { bytes: 2 * MiB, ended: true });
  });
  await withRelay([stream()], async (url, seen) => {
    assert.is((await upload(url, twoMiB, 'gzip')).status, 413);
    assert.is((await upload(url, Buffer.alloc(2 * MiB), undefined)).status, 200);
    assert.equal(seen.at(-1), { bytes: 2 * MiB, ended: true });
  });
});

test('br and deflate bombs are bounded too, and a retry inside or a slow stage before the transport still gets 413 at once', async () => {
  const slow: Stage = {
    name: 'slow',
    wrap: (next) =>
      async function slowStage(request) {
        await delay(300);
        return next(request);
      },
  };
  const zeros = Buffer.alloc(8 * MiB);
  const bombs: Array<[string, Buffer]> = [
    ['br', zlib.brotliCompressSync(zeros)],
    ['deflate', zlib.deflateSync(zeros)],
    ['deflate', zlib.deflateRawSync(zeros)],
  ];
  for (const stages of [[stream()], [stream(), retry({ maxRetries: 1, methods: ['POST'] })], [stream(), slow]]) {
    await withRelay(stages, async (url, seen) => {
      for (const [coding, bomb] of bombs) {
        const started = Date.now();
        const response = await upload(url, bomb, coding);
        assert.is(response.status, 413, `${coding} through ${stages.map((stage) => stage.name).join(', ')}`);
        assert.ok(Date.now() - started < 10_000, `answered after ${Date.now() - started} ms`);
      }
      assert.ok(seen.every((decoded) => !decoded.ended));
    });
  }
});

test('maxDecodedBytes is checked when the stage is built, and only transformRequestStream takes it', () => {
  assert.throws(() => stream({ maxDecodedBytes: -1 }), (error: Error) => error instanceof RangeError && /transformRequestStream: maxDecodedBytes/.test(error.message));
  assert.throws(
    () => transformResponseStream(passThrough, { maxDecodedBytes: 1024 } as never),
    (error: Error) => error instanceof TypeError && /unknown option "maxDecodedBytes"/.test(error.message),
  );
});

test.run();
