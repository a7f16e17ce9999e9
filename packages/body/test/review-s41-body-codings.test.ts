// Review s41 (issue 20, bodies): what the transforms make of coded bodies at the edges real servers produce: an empty
// body labelled `Content-Encoding: gzip` (an empty S3 object stored gzip, a 200 to a DELETE from a framework that
// labels every answer), and a client upload labelled gzip that is not gzip, through the streaming request transform.
// Black-box: real upstreams on 127.0.0.1, a real node:http client.
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { transformRequest, transformRequestStream, transformResponse, transformResponseStream } from '../src/index.js';

/** A Transform that passes every byte on. */
function passOn(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      callback(null, chunk);
    },
  });
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

test('transformRequestStream: an upload labelled gzip that is not gzip is the client\'s error (400, as transformRequest answers), not a 500 relay failure', async () => {
  // README errors table: 400 when "the request body does not decode ... as its headers say"; 500 ERR_INTERNAL is for
  // "a request transform's fn or Transform failed". A corrupt client upload is neither the relay's fault nor the
  // upstream's: answered 500 it counts as a server error (alerts, SLOs, client retries of a request that can never
  // succeed) and is logged at error as "relay pipeline failed" with a warn "upstream request failed".
  const upstream = await startUpstream();
  const buffered = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformRequest((data: any) => ({ ...data, via: 'gw' }), { as: 'json' })] }));
  const streamed = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [transformRequestStream(() => passOn(), { types: ['application/json'] })] }),
  );
  const good = zlib.gzipSync(JSON.stringify({ order: 1, note: 'x'.repeat(200) }));
  const bodies: Array<[string, Buffer]> = [
    ['not gzip at all', Buffer.from('{"order":1} sent plain under a gzip label')],
    ['a gzip body cut short', good.subarray(0, good.length - 10)],
  ];
  try {
    for (const [name, body] of bodies) {
      const headers = { 'content-type': 'application/json', 'content-encoding': 'gzip' };
      const viaBuffered = await fetchRaw(`${buffered.url}/orders`, { method: 'POST', headers, body });
      assert.is(viaBuffered.status, 400, `transformRequest, ${name}`);
      const viaStream = await fetchRaw(`${streamed.url}/orders`, { method: 'POST', headers, body });
      assert.is(viaStream.status, 400, `transformRequestStream, ${name}: ${viaStream.status} ${viaStream.text.trim()}`);
    }
  } finally {
    await streamed.close();
    await buffered.close();
    await upstream.close();
  }
});

test.run();
