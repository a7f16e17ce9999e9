// The options objects of @relay/body's plain functions (rewriteBody, collectBody) are checked when
// the function is called, as the stages' options are: unknown keys name the nearest valid one, bad
// values name the option.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { collectBody, rewriteBody, type BodySide } from '../src/index.js';

const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`"${key}"`) && error.message.includes(`"${nearest}"`);

/** Calls `fn`; its error, whether thrown at once or as a rejection; `null` when it succeeded. */
async function failureOf(fn: () => Promise<unknown>): Promise<Error | null> {
  try {
    await fn();
    return null;
  } catch (error) {
    return error as Error;
  }
}

test('rewriteBody(bytes, headers, edit, { maxByte }) is refused naming "maxBytes", not a whole gzip body decoded with no limit', async () => {
  // 1 MB of text behind 1 KB of gzip: the limit the caller meant (1000 bytes) is what stops a decompression bomb.
  const gzipped = gzipSync(Buffer.alloc(1_000_000, 'a'));
  let edited = 0;
  const error = await failureOf(() =>
    rewriteBody(gzipped, { 'content-type': 'text/plain', 'content-encoding': 'gzip' }, (text: unknown) => {
      edited = String(text).length;
      return String(text).slice(0, 5);
    }, { as: 'text', maxByte: 1000 } as never),
  );
  assert.ok(error !== null, `accepted { maxByte }: edit saw ${edited} decoded bytes`);
  assert.ok(unknownKey('maxByte', 'maxBytes')(error!), error!.message);
});

test('rewriteBody(..., { as: "txt" }) is refused naming as, not read as JSON', async () => {
  const error = await failureOf(() => rewriteBody(Buffer.from('hello'), { 'content-type': 'text/plain' }, () => undefined, { as: 'txt' } as never));
  assert.ok(error !== null, 'accepted as: "txt"');
  // Not a RewriteError "the body is not valid JSON": an unknown value must not fall through to the JSON branch.
  assert.ok(error instanceof TypeError || error instanceof RangeError, `${error!.name}: ${error!.message}`);
  assert.match(error!.message, /\bas\b/);
});

test('collectBody(body, limit, { side: "requset" }) is refused naming side, not read as the response side', async () => {
  const body = new PassThrough();
  const error = await failureOf(() => {
    const collected = collectBody(body, 100, { side: 'requset' as BodySide });
    body.destroy();
    return collected;
  });
  assert.ok(error !== null);
  // Not ERR_UPSTREAM_RESET: a client that left must not be blamed on the upstream (502, outlier ejections).
  assert.ok(error instanceof TypeError || error instanceof RangeError, `${error!.name}: ${(error as { code?: string }).code} ${error!.message}`);
  assert.match(error!.message, /side/);
});

test('collectBody(..., { stallMs }) past node\'s timer limit is refused naming stallMs, not a stall reported at once', async () => {
  const body = new PassThrough();
  const started = Date.now();
  const error = await failureOf(async () => {
    const collected = collectBody(body, 100, { side: 'request', stallMs: 2 ** 31 });
    body.write('a');
    setTimeout(() => body.end('b'), 100);
    return collected;
  });
  body.destroy();
  assert.ok(error !== null, 'accepted stallMs: 2 ** 31');
  // Not ERR_WRITE_TIMEOUT after a few ms (node fires an overflowing timer after 1 ms) while the body still flows.
  assert.ok(error instanceof RangeError, `${error!.name} after ${Date.now() - started} ms: ${(error as { code?: string }).code} ${error!.message}`);
  assert.match(error!.message, /stallMs/);
});

test('collectBody(..., { stallMs: "5000" }) and { stallMs: -1 } are refused naming stallMs', async () => {
  for (const stallMs of ['5000', -1, Number.NaN]) {
    const body = new PassThrough();
    let error: Error | null = null;
    try {
      const collected = collectBody(body, 100, { side: 'request', stallMs: stallMs as number });
      body.end('ok');
      await collected;
    } catch (caught) {
      error = caught as Error;
    }
    body.destroy();
    assert.ok(error !== null, `accepted stallMs: ${String(stallMs)}`);
    assert.match(error!.message, /stallMs/);
  }
});

test.run();
