import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compressionPlanner, decodableAcceptEncoding, negotiateEncoding, type Negotiated } from '../src/index.js';

// Accept-Encoding → what compress() sends (RFC 9110 §12.5.3), br and gzip on offer, br preferred on ties.
const table: Array<[string | undefined, Negotiated]> = [
  [undefined, 'identity'], // no header: send as is (every browser sends one)
  ['', 'identity'],
  ['gzip', 'gzip'],
  ['br', 'br'],
  ['gzip, br', 'br'], // a tie: br preferred
  ['gzip, deflate, br, zstd', 'br'],
  ['gzip;q=1.0, br;q=0.9', 'gzip'],
  ['br;q=0, gzip', 'gzip'],
  ['BR;Q=0.5, GZIP;q=0.4', 'br'],
  ['x-gzip', 'gzip'],
  ['deflate', 'identity'], // nothing on offer is acceptable, identity still is
  ['*', 'br'],
  ['*;q=0.5, gzip', 'gzip'],
  ['*;q=0.1, br;q=0', 'gzip'],
  ['identity', 'identity'],
  ['gzip;q=0.5, identity', 'identity'], // the client prefers identity
  ['identity;q=0', null], // identity refused and nothing else named: nothing acceptable
  ['identity;q=0, gzip', 'gzip'],
  ['identity;q=0, *', 'br'],
  ['*;q=0', null],
  ['*;q=0, identity', 'identity'],
  ['gzip;q=0, br;q=0', 'identity'],
  ['gzip;q=2, br;q=abc', 'identity'], // malformed q-values: those members are ignored
  ['gzip;q=0.001', 'gzip'],
  [' gzip ; q=0.8 , br ; q=0.8 ', 'br'],
];

test('negotiateEncoding: the negotiation table', () => {
  for (const [header, expected] of table) assert.is(negotiateEncoding(header), expected, `Accept-Encoding: ${String(header)}`);
});

test('negotiateEncoding: the server order breaks ties, and only offered codings are chosen', () => {
  assert.is(negotiateEncoding('gzip, br', { encodings: ['gzip', 'br'] }), 'gzip');
  assert.is(negotiateEncoding('br', { encodings: ['gzip'] }), 'identity');
  assert.is(negotiateEncoding(['gzip;q=0.5', 'br;q=0.7']), 'br');
});

test('decodableAcceptEncoding keeps only what a transform can decode', () => {
  assert.is(decodableAcceptEncoding('zstd, br;q=0.9, *'), 'br;q=0.9');
  assert.is(decodableAcceptEncoding('gzip, deflate, br, zstd'), 'gzip, deflate, br');
  assert.is(decodableAcceptEncoding(['X-GZIP', 'identity;q=0']), 'X-GZIP, identity;q=0');
  assert.is(decodableAcceptEncoding('zstd'), undefined);
});

test('compressionPlanner: what is never compressed, and when Vary is added', () => {
  const plan = compressionPlanner({ threshold: 100 });
  const json = { 'content-type': 'application/json', 'content-length': '5000' };
  assert.equal(plan('GET', 'gzip', 200, { ...json }), { coding: 'gzip', vary: true, flush: false });
  assert.equal(plan('GET', 'identity', 200, { ...json }), { coding: null, vary: true, flush: false });
  assert.equal(plan('GET', 'gzip', 200, { 'content-type': 'text/event-stream' }), { coding: 'gzip', vary: true, flush: true });
  // Unknown length: possibly a stream (NDJSON), flushed chunk by chunk as Go's ReverseProxy and Envoy do.
  assert.equal(plan('GET', 'gzip', 200, { 'content-type': 'application/x-ndjson' }), { coding: 'gzip', vary: true, flush: true });
  assert.equal(plan('GET', 'gzip', 200, { 'content-type': 'text/event-stream', 'content-length': '5000' }).flush, true, 'flushTypes flush whatever the length');
  const none = { coding: null, vary: false, flush: false };
  for (const status of [101, 204, 205, 206]) assert.equal(plan('GET', 'gzip', status, { ...json }), none, `status ${status}`);
  assert.equal(plan('GET', 'gzip', 200, { ...json, 'content-range': 'bytes 0-4999/5000' }), none);
  assert.equal(plan('GET', 'gzip', 200, { ...json, 'content-encoding': 'br' }), none);
  assert.equal(plan('GET', 'gzip', 200, { ...json, 'cache-control': 'public, no-transform' }), none);
  assert.equal(plan('GET', 'gzip', 200, { ...json, 'content-length': '99' }), none);
  assert.equal(plan('GET', 'gzip', 200, { 'content-type': 'image/png' }), none);
  assert.equal(plan('GET', 'gzip', 200, {}), none);
  assert.equal(plan('GET', 'gzip', 200, { ...json, 'content-encoding': 'identity' }).coding, 'gzip');
});

test('compressionPlanner: a HEAD as its GET, a 304 as its 200, a 304 of unknown type by the request', () => {
  const plan = compressionPlanner({ threshold: 100 });
  const json = { 'content-type': 'application/json', 'content-length': '5000' };
  const gzip = { coding: 'gzip', vary: true, flush: false };
  const none = { coding: null, vary: false, flush: false };
  assert.equal(plan('HEAD', 'gzip', 200, { ...json }), gzip);
  assert.equal(plan('HEAD', 'gzip', 200, { 'content-type': 'image/png' }), none);
  assert.equal(plan('GET', 'gzip', 304, { ...json }), gzip);
  assert.equal(plan('HEAD', 'gzip', 304, {}), gzip, 'no Content-Type: the request decides');
  assert.equal(plan('GET', 'identity', 304, {}), none, 'no Content-Type and no coding accepted: left alone');
  assert.equal(plan('GET', 'identity', 304, { ...json }), { coding: null, vary: true, flush: false }, 'its 200 would vary');
  assert.equal(plan('GET', 'gzip', 304, { 'content-type': 'image/png' }), none);
  assert.equal(plan('GET', 'gzip', 304, { 'cache-control': 'no-transform' }), none);
  assert.equal(plan('GET', 'gzip', 304, { 'content-encoding': 'gzip' }), none);
  assert.equal(plan('GET', 'gzip', 304, { 'content-length': '99' }), none);
  assert.equal(plan('POST', 'gzip', 304, {}), none, 'a 304 answers only GET and HEAD');
});

test('bad compress options throw naming the option', async () => {
  const { compress } = await import('../src/index.js');
  assert.throws(() => compress({ treshold: 10 } as never), /unknown option "treshold" \(did you mean "threshold"\?/);
  assert.throws(() => compress({ encodings: ['deflate'] as never }), /encodings\[0\] must be one of "br", "gzip"/);
  assert.throws(() => compress({ encodings: [] }), /non-empty/);
  assert.throws(() => compress({ gzipLevel: 10 }), /gzipLevel must be a whole number from 1 to 9/);
  assert.throws(() => compress({ brotliQuality: -1 }), /brotliQuality/);
  assert.throws(() => compress({ types: ['json'] }), /types\[0\] must be a media type/);
  assert.throws(() => compress({ threshold: -1 }), /threshold/);
});

test.run();
