// `Content-Encoding: deflate` streamed as servers send it: zlib-wrapped (RFC 9110) or raw (old IIS, some PHP), as
// browsers read both. The first two bytes choose; a first chunk of one byte waits for the second.
import { once } from 'node:events';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { delay, fetchRaw, serveRelay, startUpstream, type ClientResponse } from '@relay/testkit';
import { createDecoder, transformRequestStream, transformResponse, transformResponseStream } from '../src/index.js';
import { DeflateDecoder, isZlibHeader } from '../src/deflate-decoder.js';

const text = Buffer.from('<p>hello http://api:8000/</p>'.repeat(200));

async function decodeInChunks(encoded: Buffer, chunkSize: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < encoded.length; i += chunkSize) chunks.push(encoded.subarray(i, i + chunkSize));
  const decoder = createDecoder('deflate');
  Readable.from(chunks).pipe(decoder);
  const out: Buffer[] = [];
  for await (const part of decoder) out.push(part as Buffer);
  return Buffer.concat(out);
}

test('isZlibHeader: the zlib headers of every level pass, raw deflate streams do not', () => {
  for (const level of [0, 1, 6, 9]) {
    const wrapped = zlib.deflateSync(text, { level });
    assert.ok(isZlibHeader(wrapped[0]!, wrapped[1]!), `level ${level}: ${wrapped.subarray(0, 2).toString('hex')}`);
    for (const input of [text, Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(100_000)]) {
      const raw = zlib.deflateRawSync(input, { level });
      assert.not.ok(isZlibHeader(raw[0]!, raw[1] ?? 0), `raw, level ${level}: ${raw.subarray(0, 2).toString('hex')}`);
    }
  }
});

test('createDecoder("deflate") reads zlib-wrapped and raw deflate, whole or a byte at a time', async () => {
  for (const encoded of [zlib.deflateSync(text), zlib.deflateRawSync(text)]) {
    for (const chunkSize of [encoded.length, 1, 3]) {
      assert.ok((await decodeInChunks(encoded, chunkSize)).equals(text), `${encoded.subarray(0, 2).toString('hex')} in chunks of ${chunkSize}`);
    }
  }
});

test('a one-byte or corrupt deflate body fails the stream, as inflating it whole does; an empty one is empty content', async () => {
  assert.is((await decodeInChunks(Buffer.alloc(0), 1)).length, 0);
  for (const bad of [Buffer.from([0x78]), Buffer.from('not deflate at all'), zlib.deflateSync(text).subarray(0, 40)]) {
    const failure = await decodeInChunks(bad, 1).then(
      () => null,
      (error: Error) => error,
    );
    assert.ok(failure instanceof Error, `${bad.toString('hex').slice(0, 20)} decoded`);
  }
});

test('bytes after the end of the deflate stream are ignored, as zlib ignores them: the stream ends and the inflater goes', async () => {
  const tail = Buffer.from('\r\n\r\ntrailing garbage');
  for (const encoded of [zlib.deflateSync(text), zlib.deflateRawSync(text)]) {
    for (const chunkSize of [encoded.length + tail.length, encoded.length, 1, 7]) {
      const decoder = new DeflateDecoder();
      const body = Buffer.concat([encoded, tail]);
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += chunkSize) chunks.push(body.subarray(i, i + chunkSize));
      Readable.from(chunks).pipe(decoder);
      const out: Buffer[] = [];
      for await (const part of decoder) out.push(part as Buffer);
      const label = `${encoded.subarray(0, 2).toString('hex')} in chunks of ${chunkSize}`;
      assert.ok(Buffer.concat(out).equals(text), label);
      // The zlib handle is released, not left for the garbage collector.
      assert.ok((decoder as unknown as { inner: Transform }).inner.destroyed, label);
    }
  }
});

test('output follows the reader: a 50 MB deflate bomb nobody reads stays in the compressed form', async () => {
  const bomb = zlib.deflateRawSync(Buffer.alloc(50 * 2 ** 20));
  const decoder = new DeflateDecoder();
  decoder.end(bomb);
  await delay(300);
  // A reader that takes nothing: what waits is the readable buffer and zlib's own, not the 50 MB.
  assert.ok(decoder.readableLength <= 2 ** 20, `${decoder.readableLength} bytes decoded ahead of the reader`);
  let total = 0;
  decoder.on('data', (chunk: Buffer) => (total += chunk.length));
  await once(decoder, 'end');
  assert.is(total, 50 * 2 ** 20);
});

// Through the relay: the streaming transforms decode deflate with DeflateDecoder.

function upper(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      callback(null, Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1'));
    },
  });
}

const html = '<p>hello deflate</p>';

/** fetchRaw that gives up after `ms` (null): a relay that never ends the body must not hang the suite. */
function fetchWithin(url: string, ms: number, options: Parameters<typeof fetchRaw>[1] = {}): Promise<ClientResponse | null> {
  return Promise.race([fetchRaw(url, options), new Promise<null>((resolve) => setTimeout(() => resolve(null), ms).unref())]);
}

async function withResponseRelay(stage: Stage, body: Buffer, run: (url: string) => Promise<void>): Promise<void> {
  const upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'deflate', 'content-length': body.length });
    res.end(body);
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [stage] }));
  try {
    await run(relay.url);
  } finally {
    await relay.close();
    await upstream.close();
  }
}

const trailing = (encoded: Buffer) => Buffer.concat([encoded, Buffer.from('\r\n\r\n')]);

test('a deflate response with bytes after the end of the stream: the streaming transform ends the body, as the buffered one reads it', async () => {
  for (const encoded of [trailing(zlib.deflateSync(html)), trailing(zlib.deflateRawSync(html))]) {
    // The buffered transform reads it (zlib ignores what follows the stream end).
    await withResponseRelay(transformResponse((text: string) => text.toUpperCase()), encoded, async (url) => {
      const response = await fetchWithin(url, 3000);
      assert.ok(response !== null);
      assert.is(response.status, 200);
      assert.is(zlib.inflateSync(response.body).toString(), html.toUpperCase());
    });
    await withResponseRelay(transformResponseStream(upper), encoded, async (url) => {
      const response = await fetchWithin(url, 3000);
      assert.ok(response !== null, 'the chunked response never ended (DeflateDecoder waits for a second inner end)');
      assert.is(response.status, 200);
      assert.ok(response.complete);
      assert.is(zlib.inflateSync(response.body).toString(), html.toUpperCase());
    });
  }
});

test('a deflate upload with bytes after the end of the stream reaches the upstream whole through transformRequestStream', async () => {
  const seen: string[] = [];
  const upstream = await startUpstream(
    (req: IncomingMessage, res: ServerResponse) => {
      const parts: Buffer[] = [];
      req.on('data', (chunk: Buffer) => parts.push(chunk));
      req.on('end', () => {
        seen.push(zlib.inflateSync(Buffer.concat(parts)).toString());
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    },
    { streaming: true },
  );
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformRequestStream(upper)] }));
  try {
    const response = await fetchWithin(`${relay.url}/up`, 3000, {
      method: 'POST',
      headers: { 'content-type': 'text/html', 'content-encoding': 'deflate' },
      body: trailing(zlib.deflateSync(html)),
    });
    assert.ok(response !== null, 'no answer: the upstream never got the end of the body');
    assert.is(response.status, 200);
    assert.equal(seen, [html.toUpperCase()]);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test.run();
