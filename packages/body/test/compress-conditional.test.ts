// compress() and the answers that describe a 200 without carrying it: HEAD (RFC 9110 §9.3.2) and 304
// (§15.4.5), and the If-None-Match that revalidates a compressed answer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream, type Upstream } from '@relay/testkit';
import { compress, strongIfNoneMatch } from '../src/index.js';

const json = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) });

/**
 * An upstream that knows only its strong tag `"abc"` and compares If-None-Match as a string, as many
 * hand-written handlers do: 304 on an exact match, else the JSON (or a PNG at `/png`). Headers of
 * the 304 come from the `x-304` request header (JSON), so each test says what the 304 carries.
 */
async function strictUpstream(): Promise<Upstream> {
  return startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const png = req.url === '/png';
    const type = png ? 'image/png' : 'application/json';
    const body = png ? Buffer.alloc(4096) : Buffer.from(json);
    if (req.headers['if-none-match'] === '"abc"') {
      res.writeHead(304, { etag: '"abc"', ...(JSON.parse(String(req.headers['x-304'] ?? '{}')) as Record<string, string>) });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, etag: '"abc"', vary: 'Origin', 'accept-ranges': 'bytes' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
}

async function withRelay(run: (url: string, upstream: Upstream) => Promise<void>): Promise<void> {
  const upstream = await strictUpstream();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress()] }));
  try {
    await run(relay.url, upstream);
  } finally {
    await relay.close();
    await upstream.close();
  }
}

const described = ['content-type', 'content-encoding', 'content-length', 'etag', 'vary', 'accept-ranges'] as const;

test('HEAD gets the header fields of the GET: Content-Encoding, merged Vary, weak ETag, no Content-Length', async () => {
  await withRelay(async (url, upstream) => {
    for (const [path, acceptEncoding] of [['/json', 'gzip, br'], ['/json', 'br;q=0.5, gzip'], ['/json', 'identity'], ['/png', 'gzip']]) {
      const get = await fetchRaw(`${url}${path}`, { headers: { 'accept-encoding': acceptEncoding! } });
      const head = await fetchRaw(`${url}${path}`, { method: 'HEAD', headers: { 'accept-encoding': acceptEncoding! } });
      const label = `${path} with Accept-Encoding: ${acceptEncoding}`;
      for (const name of described) assert.is(head.headers[name], get.headers[name], `${name} of HEAD ${label}`);
      assert.is(head.body.length, 0);
    }
    const head = await fetchRaw(`${url}/json`, { method: 'HEAD', headers: { 'accept-encoding': 'gzip, br' } });
    assert.is(head.headers['content-encoding'], 'br');
    assert.is(head.headers.vary, 'Origin, Accept-Encoding');
    assert.is(head.headers.etag, 'W/"abc"');
    assert.is(head.headers['content-length'], undefined, 'not the uncompressed size');
    assert.ok(upstream.requests.some((seen) => seen.method === 'HEAD'), 'the upstream was asked with HEAD');
  });
});

/** A revalidation the strict upstream answers 304 to, the 304 carrying `carries`. */
function revalidate(url: string, acceptEncoding: string | undefined, carries: Record<string, string | number> = {}) {
  const headers: Record<string, string> = { 'if-none-match': '"abc"', 'x-304': JSON.stringify(carries) };
  if (acceptEncoding !== undefined) headers['accept-encoding'] = acceptEncoding;
  return fetchRaw(`${url}/json`, { headers });
}

test('a 304 to a client that accepts a coding carries the Vary and weak ETag of the compressed 200', async () => {
  await withRelay(async (url) => {
    const bare = await revalidate(url, 'gzip, br', { vary: 'Origin', 'content-length': json.length });
    assert.is(bare.status, 304);
    assert.is(bare.headers.etag, 'W/"abc"', 'the tag the client holds');
    assert.is(bare.headers.vary, 'Origin, Accept-Encoding');
    assert.is(bare.headers['content-encoding'], undefined, 'a 304 carries no Content-Encoding');
    assert.is(bare.headers['content-length'], undefined, 'the 200 it stands for has no known length');
    const typed = await revalidate(url, 'gzip', { 'content-type': 'application/json' });
    assert.is(typed.headers.etag, 'W/"abc"');
    assert.is(typed.headers.vary, 'Accept-Encoding');
    const merged = await revalidate(url, 'gzip', { vary: 'accept-encoding, Origin' });
    assert.is(merged.headers.vary, 'accept-encoding, Origin', 'no second Accept-Encoding');
    const star = await revalidate(url, 'gzip', { vary: '*' });
    assert.is(star.headers.vary, '*');
    assert.is(star.headers.etag, 'W/"abc"');
    const weak = await revalidate(url, 'gzip', { etag: 'W/"abc"' });
    assert.is(weak.headers.etag, 'W/"abc"', 'a weak tag stays as it is');
    // A client with no coding on offer got the 200 uncompressed, strong tag and all, but with Vary.
    const identity = await revalidate(url, 'identity', { 'content-type': 'application/json' });
    assert.is(identity.headers.etag, '"abc"');
    assert.is(identity.headers.vary, 'Accept-Encoding');
  });
});

test('a 304 whose 200 compress() would not compress is left alone', async () => {
  await withRelay(async (url) => {
    const cases: Array<[string, string | undefined, Record<string, string | number>]> = [
      ['a type not in types', 'gzip', { 'content-type': 'image/png' }],
      ['no-transform', 'gzip', { 'cache-control': 'max-age=60, no-transform' }],
      ['encoded upstream', 'gzip', { 'content-encoding': 'br' }],
      ['under the threshold', 'gzip', { 'content-length': 10 }],
      ['no coding accepted', 'identity', {}],
      ['no Accept-Encoding', undefined, {}],
    ];
    for (const [why, acceptEncoding, carries] of cases) {
      const response = await revalidate(url, acceptEncoding, carries);
      assert.is(response.status, 304, why);
      assert.is(response.headers.etag, '"abc"', why);
      assert.is(response.headers.vary, undefined, why);
    }
  });
});

test('revalidating with the weak tag the compressed 200 carried: the strict upstream still answers 304', async () => {
  await withRelay(async (url, upstream) => {
    const first = await fetchRaw(`${url}/json`, { headers: { 'accept-encoding': 'gzip' } });
    assert.is(first.headers.etag, 'W/"abc"');
    assert.is(zlib.gunzipSync(first.body).toString(), json);
    for (const method of ['GET', 'HEAD']) {
      const again = await fetchRaw(`${url}/json`, { method, headers: { 'accept-encoding': 'gzip', 'if-none-match': first.headers.etag! } });
      assert.is(again.status, 304, method);
      assert.is(again.headers.etag, 'W/"abc"', `${method}: the tag the client holds, confirmed`);
      assert.is(upstream.requests.at(-1)!.headers['if-none-match'], '"abc"');
    }
  });
});

test('If-None-Match is rewritten only for a client that accepts a coding; If-Match never', async () => {
  await withRelay(async (url, upstream) => {
    const seen = async (headers: Record<string, string>, method = 'GET') => {
      await fetchRaw(`${url}/json`, { method, headers });
      const last = upstream.requests.at(-1)!;
      return [last.headers['if-none-match'], last.headers['if-match']];
    };
    // No client without a coding can hold a tag compress() weakened: its weak tag is the upstream's own.
    assert.equal(await seen({ 'accept-encoding': 'identity', 'if-none-match': 'W/"abc"' }), ['W/"abc"', undefined]);
    assert.equal(await seen({ 'if-none-match': 'W/"abc"' }), ['W/"abc"', undefined]);
    assert.equal(await seen({ 'accept-encoding': 'br', 'if-none-match': 'W/"x", "y", W/"abc"' }), ['"x", "y", "abc"', undefined]);
    assert.equal(await seen({ 'accept-encoding': 'br', 'if-none-match': '*' }), ['*', undefined]);
    // If-Match compares strongly: a weak tag must fail it, and the proxy does not vouch otherwise.
    assert.equal(await seen({ 'accept-encoding': 'gzip', 'if-match': 'W/"abc"' }), [undefined, 'W/"abc"']);
    assert.equal(await seen({ 'accept-encoding': 'gzip', 'if-none-match': 'W/"abc"' }, 'POST'), ['W/"abc"', undefined]);
  });
});

test('strongIfNoneMatch: weak members made strong; anything that is not a list of tags left alone', () => {
  assert.is(strongIfNoneMatch('W/"abc"'), '"abc"');
  assert.is(strongIfNoneMatch(' W/"a" ,"b", W/"a"'), '"a", "b"');
  assert.is(strongIfNoneMatch(['W/"a"', '"b"']), '"a", "b"');
  assert.is(strongIfNoneMatch('"xW/", W/"y"'), '"xW/", "y"', 'W/ inside an opaque tag is not a weakness mark');
  assert.is(strongIfNoneMatch('"abc"'), null, 'nothing weak: nothing to change');
  assert.is(strongIfNoneMatch('*'), null);
  assert.is(strongIfNoneMatch('W/abc'), null, 'not a tag');
  assert.is(strongIfNoneMatch(''), null);
});

test.run();
