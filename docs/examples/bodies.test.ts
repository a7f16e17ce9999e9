// Runs the relays of docs/bodies.md (bodies.ts) and the @relay/body README (readme-body.ts)
// against real upstreams on 127.0.0.1.
import { once } from 'node:events';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { apiGateway, chooseCoding, ReplaceStream, siteGateway, uploadLimits, wouldCompress } from './bodies.js';
import { createRelay } from '@relay/core';
import { bodyDefaults } from './configuration-body.js';
import { bodyExample } from './readme-body.js';

test('apiGateway: the response loses its secret field and comes compressed; the order body is stamped; 413 over 64 KiB', async () => {
  let attempts = 0;
  const orders = Array.from({ length: 100 }, (_, id) => ({ id, item: 'tea' }));
  const upstream = await startUpstream((req, res, seen) => {
    if (req.method === 'POST' && attempts++ === 0) return void res.writeHead(503, { 'content-length': 0 }).end();
    const body = req.method === 'POST' ? seen.body.toString() : JSON.stringify({ name: 'ada', passwordHash: 'secret', orders });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  const gateway = await serveRelay(apiGateway(upstream.url));
  try {
    const user = await fetchRaw(`${gateway.url}/users/1`, { headers: { 'accept-encoding': 'gzip' } });
    assert.is(user.headers['content-encoding'], 'gzip');
    assert.equal(JSON.parse(zlib.gunzipSync(user.body).toString()), { name: 'ada', orders });
    const order = await fetchRaw(`${gateway.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"item":"tea"}' });
    assert.equal(JSON.parse(order.text), { item: 'tea', channel: 'web' });
    assert.equal(
      upstream.requests.filter((r) => r.method === 'POST').map((r) => r.body.toString()),
      ['{"item":"tea","channel":"web"}', '{"item":"tea","channel":"web"}'],
      'the retried attempt replays the transformed body',
    );
    const big = await fetchRaw(`${gateway.url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(64 * 1024 + 1, 0x20) });
    assert.is(big.status, 413);
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test('uploadLimits: by type first, then by path', async () => {
  const upstream = await startUpstream();
  const gateway = await serveRelay(uploadLimits(upstream.url));
  try {
    const post = async (path: string, type: string, size: number) =>
      (await fetchRaw(`${gateway.url}${path}`, { method: 'POST', headers: { 'content-type': type, 'content-length': String(size) }, body: Buffer.alloc(size) })).status;
    assert.is(await post('/doc', 'application/json', 256 * 1024 + 1), 413);
    assert.is(await post('/file', 'multipart/form-data; boundary=x', 2 * 2 ** 20), 200);
    assert.is(await post('/file', 'application/octet-stream', 2 * 2 ** 20), 413);
    assert.is(await post('/admin/file', 'application/octet-stream', 2 * 2 ** 20), 200);
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test('siteGateway: links are rewritten in a streamed page, even across chunk boundaries, then compressed', async () => {
  const link = 'http://site.internal/about';
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    // The second link is split across two writes, and so is a three-byte character.
    res.write(`<a href="${link}">é</a><a href="http://site.`);
    setTimeout(() => res.end(`internal/x">€${'<p>filler</p>'.repeat(200)}</a>`), 20);
  });
  const gateway = await serveRelay(siteGateway(upstream.url));
  try {
    const page = await fetchRaw(`${gateway.url}/`, { headers: { 'accept-encoding': 'br' } });
    assert.is(page.headers['content-encoding'], 'br');
    const html = zlib.brotliDecompressSync(page.body).toString();
    assert.ok(html.startsWith('<a href="https://www.example.com/about">é</a><a href="https://www.example.com/x">€'), html.slice(0, 120));
    assert.not.match(html, 'site.internal');
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test('ReplaceStream handles a match split at any byte', async () => {
  const input = Buffer.from('xx http://site.internal/a ü yy');
  for (let cut = 1; cut < input.length; cut++) {
    const stream = new ReplaceStream('http://site.internal', 'https://www.example.com');
    const parts: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => parts.push(chunk));
    stream.write(input.subarray(0, cut));
    stream.end(input.subarray(cut));
    await once(stream, 'end');
    assert.is(Buffer.concat(parts).toString(), 'xx https://www.example.com/a ü yy', `cut at ${cut}`);
  }
});

/** Runs `chunks` through a fresh ReplaceStream and resolves with the whole output. */
async function replaced(from: string, to: string, chunks: string[]): Promise<string> {
  const stream = new ReplaceStream(from, to);
  let out = '';
  stream.on('data', (part: Buffer) => (out += part.toString()));
  for (const chunk of chunks) stream.write(Buffer.from(chunk));
  stream.end();
  await once(stream, 'end');
  return out;
}

test('ReplaceStream gives what one replaceAll over the whole body gives, wherever the body is split', async () => {
  // Collapsing a doubled mount prefix, a common HTML fix-up: `to` ends with text that, with the next chunk, spells
  // `from` again. A tail held back after replacing would be replaced again when the split falls there; one
  // replaceAll (and nginx sub_filter) never rescans what it wrote.
  const cases: Array<[string, string, string]> = [
    ['/api/api/', '/api/', '<a href="/api/api/api/users">'],
    ['ab', 'a', 'xabbby'],
    ['aa', 'b', 'aaaaa'],
  ];
  for (const [from, to, text] of cases) {
    const whole = text.replaceAll(from, to);
    for (let split = 1; split < text.length; split++) {
      const streamed = await replaced(from, to, [text.slice(0, split), text.slice(split)]);
      assert.is(streamed, whole, `${JSON.stringify(from)} → ${JSON.stringify(to)} over ${JSON.stringify(text)} split at ${split}`);
    }
    assert.is(await replaced(from, to, [...text]), whole, `${JSON.stringify(text)} a character at a time`);
  }
});

test('the plain functions: negotiation and the compression plan', () => {
  assert.is(chooseCoding('gzip, deflate, br'), 'br');
  assert.is(chooseCoding('gzip;q=1, br;q=0.5'), 'gzip');
  assert.is(chooseCoding('identity;q=0'), 'none acceptable');
  assert.is(chooseCoding(undefined), 'identity');
  assert.equal(wouldCompress('application/json', 5000, 'gzip'), { coding: 'gzip', vary: true, flush: false });
  assert.equal(wouldCompress('application/json', 500, 'gzip'), { coding: null, vary: false, flush: false });
  assert.equal(wouldCompress('image/png', 5000, 'gzip'), { coding: null, vary: false, flush: false });
});

async function baseOf(server: http.Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('@relay/body README: links rewritten, br for a client that accepts it, 413 over 1 MiB', async () => {
  const upstream = await startUpstream((_req, res) => {
    const page = `<a href="http://api:8000/docs">docs</a>${'<p>some text</p>'.repeat(100)}`;
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) }).end(page);
  });
  const { api, server } = await bodyExample(upstream.url, 0);
  try {
    const base = await baseOf(server);
    const page = await fetchRaw(`${base}/api/`, { headers: { 'accept-encoding': 'gzip, br' } });
    assert.is(page.headers['content-encoding'], 'br');
    assert.ok(zlib.brotliDecompressSync(page.body).toString().startsWith('<a href="/api/docs">'));
    const upload = await fetchRaw(`${base}/api/upload`, { method: 'POST', body: Buffer.alloc(1024 * 1024 + 1) });
    assert.is(upload.status, 413);
  } finally {
    await close(server);
    await api.shutdown();
    await upstream.close();
  }
});

test('configuration: every @relay/body option spelled out with its default builds, and a request goes through', async () => {
  const upstream = await startUpstream();
  const gateway = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: bodyDefaults() }));
  try {
    const response = await fetchRaw(`${gateway.url}/x`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.is(response.status, 200);
    assert.is(JSON.parse(response.text).body, '{"a":1}');
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test.run();
