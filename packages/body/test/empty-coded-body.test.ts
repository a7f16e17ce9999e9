// An empty body labelled with a content coding (`Content-Encoding: gzip` and `Content-Length: 0`: an empty S3 object
// stored gzip, a 200 to a DELETE from a framework that labels every answer) is empty content, as browsers and curl
// read it. zlib says "unexpected end of file" for zero bytes; no transform turns such an answer into a 502.
// Black-box through real upstreams on 127.0.0.1 and a real node:http client, and the decode functions themselves.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import {
  compress,
  createDecoder,
  decodeBuffer,
  rewriteBody,
  transformRequest,
  transformRequestStream,
  transformResponse,
  transformResponseStream,
  type BodyCoding,
} from '../src/index.js';

const codings: BodyCoding[] = ['gzip', 'br', 'deflate'];

/** A Transform that passes every byte on. */
function passOn(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      callback(null, chunk);
    },
  });
}

/** Everything `createDecoder(coding)` makes of `chunks`. */
async function streamDecoded(coding: BodyCoding, chunks: Buffer[]): Promise<Buffer> {
  const decoder = createDecoder(coding);
  Readable.from(chunks).pipe(decoder);
  const out: Buffer[] = [];
  for await (const part of decoder) out.push(part as Buffer);
  return Buffer.concat(out);
}

test('transformResponse / transformResponseStream: an empty 200 labelled Content-Encoding: gzip passes as the empty 200 it is, not a 502', async () => {
  // README: "with as: 'json' ... an empty body (a 200 to a DELETE) is no document: it passes untouched and fn is not
  // called". The relay alone passes this answer on, and clients read it as empty: fetch() and curl --compressed give
  // 200 and no content. A zero-length body has nothing to decode; zlib.gunzip([]) says "unexpected end of file".
  const upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const type = req.url === '/page' ? 'text/html' : 'application/json';
    res.writeHead(200, { 'content-type': type, 'content-encoding': 'gzip', 'content-length': '0' });
    res.end();
  });
  let calls = 0;
  const plain = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  const buffered = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        transformResponse(
          (data: any) => {
            calls++;
            return { ...data, seen: true };
          },
          { as: 'json' },
        ),
      ],
    }),
  );
  const streamed = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        transformResponseStream(() => {
          calls++;
          return passOn();
        }),
      ],
    }),
  );
  try {
    const direct = await fetchRaw(`${plain.url}/item/7`, { method: 'DELETE', headers: { 'accept-encoding': 'gzip' } });
    assert.is(direct.status, 200, 'the relay alone passes the empty gzip answer on');
    assert.is(direct.body.length, 0);

    const json = await fetchRaw(`${buffered.url}/item/7`, { method: 'DELETE', headers: { 'accept-encoding': 'gzip' } });
    assert.is(json.status, 200, `transformResponse({ as: 'json' }) turned an empty gzip 200 into: ${json.status} ${json.text.trim()}`);
    assert.is(json.body.length, 0);

    const page = await fetchRaw(`${streamed.url}/page`, { headers: { 'accept-encoding': 'gzip' } });
    assert.is(page.status, 200, `transformResponseStream turned an empty gzip 200 into: ${page.status} ${page.text.trim()}`);
    assert.ok(page.complete);
    const decoded = page.body.length === 0 ? '' : zlib.gunzipSync(page.body).toString();
    assert.is(decoded, '', 'an empty body stays empty');
  } finally {
    await streamed.close();
    await buffered.close();
    await plain.close();
    await upstream.close();
  }
  assert.ok(calls <= 1, 'fn is not called for a body with no content');
});

test('decodeBuffer and createDecoder: no bytes decode to no bytes in every coding; a body with bytes that are not the coding still fails', async () => {
  for (const coding of codings) {
    assert.is((await decodeBuffer(coding, Buffer.alloc(0), 1024)).length, 0, `decodeBuffer ${coding}`);
    assert.is((await streamDecoded(coding, [])).length, 0, `createDecoder ${coding}, no chunk`);
    assert.is((await streamDecoded(coding, [Buffer.alloc(0), Buffer.alloc(0)])).length, 0, `createDecoder ${coding}, empty chunks`);
    const junk = Buffer.from('plain text under a coding label');
    assert.ok(await decodeBuffer(coding, junk, 1024).then(() => false, () => true), `decodeBuffer ${coding} refuses junk`);
    assert.ok(await streamDecoded(coding, [junk]).then(() => false, () => true), `createDecoder ${coding} refuses junk`);
  }
  // The zlib streams still read a real body after the change that lets them end empty.
  assert.is((await streamDecoded('gzip', [zlib.gzipSync('hello')])).toString(), 'hello');
  assert.is((await streamDecoded('br', [zlib.brotliCompressSync('hello')])).toString(), 'hello');
});

test('rewriteBody: an empty coded body is the empty body: untouched under as: json, fn gets "" under as: text, as for an uncoded one', async () => {
  for (const coding of codings) {
    let called = false;
    const json = { 'content-type': 'application/json', 'content-encoding': coding };
    assert.is(await rewriteBody(Buffer.alloc(0), json, () => ((called = true), {}), { as: 'json' }), null, coding);
    assert.not.ok(called, `${coding}: fn is not called for no JSON document`);
    const text = { 'content-type': 'text/plain', 'content-encoding': coding };
    let seen: string | null = null;
    const filled = await rewriteBody(Buffer.alloc(0), text, (body: string) => ((seen = body), 'filled'), { as: 'text' });
    assert.is(seen, '', coding);
    assert.is((await decodeBuffer(coding, filled!, 1024)).toString(), 'filled', `${coding}: what fn wrote is sent in the body's coding`);
    assert.is(text['content-length' as keyof typeof text], String(filled!.length));
  }
});

test('compress() outside a transform passes an empty gzip 200 as it is: already encoded, and nothing to decode', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': '0' }).end();
  });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [compress({ threshold: 0 }), transformResponse((data) => data, { as: 'json' })] }));
  try {
    const answer = await fetchRaw(`${relay.url}/item/7`, { method: 'DELETE', headers: { 'accept-encoding': 'br, gzip' } });
    assert.is(answer.status, 200);
    assert.is(answer.headers['content-encoding'], 'gzip');
    assert.is(answer.body.length, 0);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

/** POSTs an empty chunked body (no Content-Length) labelled gzip, the way a streaming client sends one. */
function postEmptyChunked(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/orders`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'transfer-encoding': 'chunked' } });
    req.on('error', reject);
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.end();
  });
}

test('request transforms: an empty chunked upload labelled gzip goes through as empty content, not a 400', async () => {
  const upstream = await startUpstream();
  const buffered = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformRequest((data: any) => ({ ...data, via: 'gw' }), { as: 'json' })] }));
  const streamed = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformRequestStream(() => passOn(), { types: ['application/json'] })] }));
  try {
    assert.is(await postEmptyChunked(buffered.url), 200, 'transformRequest');
    assert.is(upstream.requests.at(-1)!.body.length, 0, 'transformRequest sends the empty body on');
    assert.is(await postEmptyChunked(streamed.url), 200, 'transformRequestStream');
    const body = upstream.requests.at(-1)!.body;
    assert.is(body.length === 0 ? '' : zlib.gunzipSync(body).toString(), '', 'transformRequestStream sends empty content');
  } finally {
    await streamed.close();
    await buffered.close();
    await upstream.close();
  }
});

test.run();
