// Review s37b (core, commit c1fc1b1, watchUploadReset): an HTTP/2 client that resets its stream
// mid-upload (RST_STREAM without END_STREAM) must cut the upstream upload on every transport
// (http2-front-edges covers httpTransport only); a client that ends its stream and then resets
// it (node's stream.close()) still delivers the whole upload.
import http2 from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, listenHttp2, startUpstream, waitFor } from '@relay/testkit';
import { createRelay, http2Transport, httpTransport, type Transport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';
import { h2FrontSession } from './http2-helpers.js';

const test = suite('review s37b: HTTP/2 upload reset');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

function watcher(seen: string[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      seen.push(`complete ${bytes}`);
      res.end('ok');
    });
    req.on('aborted', () => seen.push(`cut ${bytes}`));
    req.on('close', () => {
      if (!req.complete && !seen.some((s) => s.startsWith('cut'))) seen.push(`cut ${bytes}`);
    });
    req.on('error', () => {});
  };
}

async function upstreamFor(kind: string, seen: string[]): Promise<{ url: string; requests: () => number }> {
  let count = 0;
  const handler = watcher(seen);
  if (kind === 'http2Transport') {
    const server = http2.createServer((req, res) => {
      count++;
      handler(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    });
    const listening = await listenHttp2(server);
    closers.push(() => listening.close());
    return { url: listening.url, requests: () => count };
  }
  const upstream = await startUpstream(
    (req, res) => {
      count++;
      handler(req, res);
    },
    { streaming: true },
  );
  closers.push(() => upstream.close());
  return { url: upstream.url, requests: () => count };
}

const transports: Array<[string, () => Transport]> = [
  ['httpTransport', () => httpTransport()],
  ['gotTransport', () => gotTransport()],
  ['undiciTransport', () => undiciTransport()],
  ['http2Transport', () => http2Transport()],
];

for (const [name, transport] of transports) {
  for (const framing of ['chunked', 'content-length'] as const) {
    test(`${name} (${framing}): a client RST_STREAM mid-upload (no END_STREAM) reaches the upstream as a cut upload, never a whole shorter body`, async () => {
      // RFC 9113 §8.1: a request is complete only with END_STREAM; the commit: "cuts the upstream upload".
      const seen: string[] = [];
      const upstream = await upstreamFor(name, seen);
      const relay = createRelay({ targetBaseUrl: upstream.url, transport: transport(), timeout: { read: 3000, write: 3000 } });
      const session = await h2FrontSession(closers, relay);
      const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' };
      if (framing === 'content-length') headers['content-length'] = '5000';
      const stream = session.request(headers);
      stream.on('error', () => {});
      stream.write(Buffer.alloc(1000, 'u'));
      assert.ok(await waitFor(() => upstream.requests() === 1, 3000), 'the upload reached the upstream');
      await delay(100);
      stream.destroy();
      assert.ok(await waitFor(() => seen.length >= 1, 3000), 'the upstream saw neither an end nor a cut');
      assert.ok(seen[0]!.startsWith('cut'), `upstream saw: ${seen.join(', ')}`);
      assert.ok(await waitFor(() => relay.inFlight === 0, 3000), `relay.inFlight stayed ${relay.inFlight}`);
    });
  }

  test(`${name}: a client that sends END_STREAM and then resets (stream.close()) delivers the whole upload`, async () => {
    const seen: string[] = [];
    const upstream = await upstreamFor(name, seen);
    const relay = createRelay({ targetBaseUrl: upstream.url, transport: transport(), timeout: { read: 3000, write: 3000 } });
    const session = await h2FrontSession(closers, relay);
    const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' });
    stream.on('error', () => {});
    stream.write(Buffer.alloc(1000, 'u'));
    assert.ok(await waitFor(() => upstream.requests() === 1, 3000), 'the upload reached the upstream');
    await delay(100);
    stream.end(Buffer.alloc(1000, 'v'));
    stream.close();
    assert.ok(await waitFor(() => seen.length >= 1, 3000), 'the upstream saw nothing');
    assert.equal(seen.slice(0, 1), ['complete 2000']);
    assert.ok(await waitFor(() => relay.inFlight === 0, 3000), `relay.inFlight stayed ${relay.inFlight}`);
  });
}

test.run();
