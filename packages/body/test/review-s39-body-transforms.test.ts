// Review s39 (issue 20, bodies): transforms seen by real clients. An Expect: 100-continue upload through a buffered
// request transform with end-to-end Expect; what a transformed GET advertises about ranges; a raw-deflate upstream
// through the streaming response transform; HEAD and GET agreeing when compress() sits outside transformResponse (the
// README's own order). Black-box: real upstreams on 127.0.0.1, real node:http clients.
import { deflateRawSync, inflateRawSync, inflateSync } from 'node:zlib';
import { request as httpRequest } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { compress, transformRequest, transformResponse, transformResponseStream } from '../src/index.js';

function identityTransform(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      callback(null, chunk);
    },
  });
}

test('transformRequest with end-to-end Expect (checkContinue → relay.handle): a client waiting for 100 Continue is answered, not left hanging', async () => {
  // core: with server.on('checkContinue', relay.handle) the client gets 100 only when the upstream sends it. The
  // buffered transform waits for the whole body before contacting the upstream, so nobody ever sends 100 and a
  // client that honours Expect (node:http, and Go/.NET until their timeout) never sends the body. nginx reads the
  // body itself (proxy_request_buffering) and so answers 100 Continue itself.
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [transformRequest((data: any) => ({ ...data, via: 'gw' }), { as: 'json' })] });
  const served = await serveRelay(relay);
  served.server.on('checkContinue', relay.handle);
  try {
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest(`${served.url}/orders`, {
        method: 'POST',
        agent: false,
        headers: { expect: '100-continue', 'content-type': 'application/json', 'content-length': '7' },
      });
      const timer = setTimeout(() => {
        resolve('no 100 Continue and no answer within 3 s');
        req.destroy();
      }, 3000);
      req.on('continue', () => req.end('{"a":1}'));
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          clearTimeout(timer);
          resolve(`${res.statusCode}`);
        });
      });
      req.on('error', (error) => {
        clearTimeout(timer);
        resolve(`error ${error.message}`);
      });
    });
    assert.is(outcome, '200');
    assert.is(upstream.requests.length, 1);
    assert.equal(JSON.parse(upstream.requests[0]!.body.toString()), { a: 1, via: 'gw' });
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('transformResponse: a rewritten GET does not advertise byte ranges the route no longer serves (HEAD already says so)', async () => {
  // README: both response transforms drop the request's Range, so a matching body always comes whole; a HEAD "loses
  // Content-Length, Accept-Ranges, ETag" because they describe the upstream's bytes. The GET keeps Accept-Ranges:
  // bytes, so a client (a download manager, a media element) is told ranges work, asks for one and gets a 200 of the
  // whole body; and HEAD and GET disagree (RFC 9110 §9.3.2). nginx's gzip/ssi filters clear Accept-Ranges.
  const html = '<a href="http://api:8000/x">x</a>'.repeat(20);
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(html), 'accept-ranges': 'bytes' });
    res.end(html);
  });
  const relay = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [transformResponse((text: string) => text.replaceAll('http://api:8000', ''))] }),
  );
  try {
    const get = await fetchRaw(`${relay.url}/page`);
    assert.ok(get.body.length < Buffer.byteLength(html), 'the GET was rewritten');
    const ranged = await fetchRaw(`${relay.url}/page`, { headers: { range: 'bytes=0-9' } });
    assert.is(ranged.status, 200, 'the Range is dropped: the whole body comes');
    const head = await fetchRaw(`${relay.url}/page`, { method: 'HEAD' });
    assert.is(head.headers['accept-ranges'], undefined, 'HEAD drops Accept-Ranges');
    assert.is(get.headers['accept-ranges'], undefined, `the rewritten GET still says Accept-Ranges: ${get.headers['accept-ranges']}`);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('transformResponseStream: a raw deflate body (no zlib wrapper) is transformed as transformResponse reads it, not a 502', async () => {
  // README: buffered mode reads `deflate` "sent raw, without the zlib wrapper, as browsers do" (old IIS, some PHP);
  // the streaming mode promises the same codings ("decoded (gzip, br, deflate)") but its inflate refuses raw deflate:
  // the client gets 502 for a body the buffered transform and every browser read.
  const html = '<p>hello http://api:8000/</p>'.repeat(50);
  const upstream = await startUpstream((_req, res) => {
    const body = deflateRawSync(html);
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'deflate', 'content-length': body.length });
    res.end(body);
  });
  const buffered = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformResponse((text: string) => text)] }));
  const streaming = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformResponseStream(identityTransform)] }));
  try {
    const whole = await fetchRaw(`${buffered.url}/page`, { headers: { 'accept-encoding': 'deflate' } });
    assert.is(whole.status, 200, 'buffered mode reads raw deflate');
    const streamed = await fetchRaw(`${streaming.url}/page`, { headers: { 'accept-encoding': 'deflate' } });
    assert.is(streamed.status, 200, `streaming mode answered ${streamed.status}: ${streamed.text}`);
    assert.is(streamed.headers['content-encoding'], 'deflate');
    let decoded: string;
    try {
      decoded = inflateSync(streamed.body).toString();
    } catch {
      decoded = inflateRawSync(streamed.body).toString();
    }
    assert.is(decoded, html);
  } finally {
    await buffered.close();
    await streaming.close();
    await upstream.close();
  }
});

test("compress() outside transformResponse (the README's order): HEAD states the Content-Encoding and Vary its GET gets", async () => {
  // README (compress): "HEAD gets the header fields of the GET: the Content-Encoding the GET would get". The transform
  // drops Content-Length on the HEAD, so compress() sees an unknown length and says gzip; the GET carries the
  // rewritten Content-Length (under the 1024-byte threshold) and goes identity, without Vary. A cache or client that
  // trusts HEAD (RFC 9110 §9.3.2) is told the body is gzip when it is not.
  const html = '<a href="http://api:8000/x">x</a>'.repeat(10);
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(html) });
    res.end(html);
  });
  const relay = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [compress(), transformResponse((text: string) => text.replaceAll('http://api:8000', ''))] }),
  );
  try {
    const get = await fetchRaw(`${relay.url}/page`, { headers: { 'accept-encoding': 'gzip' } });
    const head = await fetchRaw(`${relay.url}/page`, { method: 'HEAD', headers: { 'accept-encoding': 'gzip' } });
    assert.is(get.status, 200);
    assert.is(head.headers['content-encoding'], get.headers['content-encoding'], 'HEAD and GET name different codings');
    assert.is(head.headers.vary, get.headers.vary, 'HEAD and GET vary differently');
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test.run();
