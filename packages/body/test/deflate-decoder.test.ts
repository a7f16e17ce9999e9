// `Content-Encoding: deflate` streamed as servers send it: zlib-wrapped (RFC 9110) or raw (old IIS, some PHP), as
// browsers read both. The first two bytes choose; a first chunk of one byte waits for the second.
import { once } from 'node:events';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay } from '@relay/testkit';
import { createDecoder } from '../src/index.js';
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

test('an empty, one-byte or corrupt deflate body fails the stream, as inflating it whole does', async () => {
  for (const bad of [Buffer.alloc(0), Buffer.from([0x78]), Buffer.from('not deflate at all'), zlib.deflateSync(text).subarray(0, 40)]) {
    const failure = await decodeInChunks(bad, 1).then(
      () => null,
      (error: Error) => error,
    );
    assert.ok(failure instanceof Error, `${bad.toString('hex').slice(0, 20)} decoded`);
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

test.run();
