// The options objects of @relay/body's building blocks (negotiation, encoders, collectBody) reject
// an unknown key with a TypeError naming the nearest valid one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Readable } from 'node:stream';
import { cachedNegotiator, collectBody, createEncoder, encodeBuffer, negotiateEncoding, type CodingLevels, type NegotiateOptions } from '../src/index.js';

const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`unknown option "${key}"`) && error.message.includes(`did you mean "${nearest}"`);

test('negotiateEncoding and cachedNegotiator: { encoding } names "encodings"', () => {
  const misspelled = { encoding: ['gzip'] } as unknown as NegotiateOptions;
  assert.throws(() => negotiateEncoding('br, gzip', misspelled), unknownKey('encoding', 'encodings'));
  assert.throws(() => cachedNegotiator(misspelled), unknownKey('encoding', 'encodings'));
  assert.throws(() => cachedNegotiator('gzip' as unknown as NegotiateOptions), (error: Error) => error instanceof TypeError && /needs an options object/.test(error.message));
  assert.is(cachedNegotiator({ encodings: ['gzip'] })('br, gzip'), 'gzip');
});

test('createEncoder and encodeBuffer: levels { gzipLevl } names "gzipLevel"', () => {
  const misspelled = { gzipLevl: 1, brotliQuality: 4 } as unknown as CodingLevels;
  assert.throws(() => createEncoder('gzip', misspelled), unknownKey('gzipLevl', 'gzipLevel'));
  assert.throws(() => encodeBuffer('gzip', Buffer.from('x'), misspelled), unknownKey('gzipLevl', 'gzipLevel'));
});

test('collectBody: { stalMs } names "stallMs"', () => {
  const body = Readable.from([Buffer.from('x')]);
  assert.throws(() => collectBody(body, 10, { side: 'request', stalMs: 10 } as never), unknownKey('stalMs', 'stallMs'));
  assert.throws(() => collectBody(body, 10, 'request' as never), (error: Error) => error instanceof TypeError && /needs an options object/.test(error.message));
  body.destroy();
});

test.run();
