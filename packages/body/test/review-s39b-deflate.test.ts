// Review s39b: transformResponseStream / transformRequestStream with DeflateDecoder, as servers really send deflate.
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream, type ClientResponse } from '@relay/testkit';
import { transformRequestStream, transformResponse, transformResponseStream } from '../src/index.js';

function upper(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      callback(null, Buffer.from(chunk.toString('latin1').toUpperCase(), 'latin1'));
    },
  });
}

const html = '<p>hello deflate</p>';

/** fetchRaw that gives up after `ms` (status 0): a relay that never ends the body must not hang the suite. */
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
