// Review s37b (core commit c1fc1b1 seen through retry()): an HTTP/2 client that resets its stream
// mid-upload (RST_STREAM, no END_STREAM) while retry() buffers the body for a replay: neither
// the first attempt nor a replay may reach the upstream as a complete, shorter body.
import http2 from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { delay, listenHttp2, startUpstream, waitFor } from '@relay/testkit';
import { retry } from '../src/index.js';

test('retry() buffering a PUT: a client RST_STREAM mid-upload is never sent upstream as a complete body, first attempt or replay', async () => {
  // RFC 9113 §8.1: a request ends with END_STREAM; RFC 9110 §9.2.2: only a whole request may be replayed.
  const seen: string[] = [];
  const upstream = await startUpstream(
    (req, res) => {
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.on('end', () => {
        seen.push(`complete ${bytes}`);
        res.statusCode = 503;
        res.end('again');
      });
      req.on('aborted', () => seen.push(`cut ${bytes}`));
      req.on('error', () => {});
    },
    { streaming: true },
  );
  const relay = createRelay({ targetBaseUrl: upstream.url, timeout: { read: 3000, write: 3000 }, stages: [retry({ maxRetries: 2, backoffFactor: 10 })] });
  const front = await listenHttp2(http2.createServer(relay.handle));
  const session = http2.connect(front.url);
  session.on('error', () => {});
  try {
    const stream = session.request({ ':method': 'PUT', ':path': '/file', 'content-type': 'application/octet-stream' });
    stream.on('error', () => {});
    stream.write(Buffer.alloc(1000, 'u'));
    await waitFor(() => upstream.requests.length === 1, 2000);
    await delay(150);
    stream.destroy();
    await delay(1500);
    assert.ok(!seen.some((entry) => entry.startsWith('complete')), `upstream saw: ${seen.join(', ')}`);
    assert.ok(await waitFor(() => relay.inFlight === 0, 3000), `relay.inFlight stayed ${relay.inFlight}`);
  } finally {
    session.destroy();
    await front.close();
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test.run();
