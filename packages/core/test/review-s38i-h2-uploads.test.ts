// Review s38i (core, HTTP/2 front): uploads the upstream or the relay refuses before they end.
// - An upstream that answers 413 with `Connection: close` and closes while the body still comes
//   (node:http's own way): the client must see the 413, not a 502 from the relay's next write
//   hitting EPIPE before it read the answer already in its socket (Envoy fixed the same,
//   envoyproxy/envoy#2929). Reading the body only from the connect (94d0cb5) lost it every time.
// - The relay's own error answer (502 after the upstream reset mid-upload): the rest must be
//   drained and the stream closed, as after an upstream's early answer; the body was left paused,
//   the client blocked on flow control and the exchange in flight for good (RFC 9113 §8.1: a
//   server that answers before the request is complete resets the stream with NO_ERROR).
import http2 from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream, waitFor, writeChunks } from '@relay/testkit';
import { createRelay, type Relay, type Transport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { h2FrontSession, refuseUploadEarly } from './http2-helpers.js';

const test = suite('review s38i: HTTP/2 uploads refused before they end');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

/** The stream's answer (status, body) and whether it closed, within `limitMs`. */
function settle(stream: http2.ClientHttp2Stream, limitMs: number): Promise<{ status: unknown; body: string; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let status: unknown;
    const finish = () => {
      clearTimeout(timer);
      resolve({ status, body: Buffer.concat(chunks).toString(), closed: stream.closed });
    };
    const timer = setTimeout(finish, limitMs);
    stream.on('response', (headers) => (status = headers[':status']));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', () => {});
    stream.on('close', finish);
  });
}

const transports: Array<[string, () => Transport | undefined]> = [
  ['http', () => undefined],
  ['got', () => gotTransport()],
];

for (const [name, transport] of transports) {
  test(`${name}: an upstream that answers 413 with Connection: close before reading a 4 MiB HTTP/2 upload, then closes: the client gets the 413, not a 502`, async () => {
    const upstream = await startUpstream(refuseUploadEarly, { streaming: true });
    closers.push(() => upstream.close());
    const relay: Relay = createRelay({ targetBaseUrl: upstream.url, timeout: { read: 3000, write: 3000 }, transport: transport() });
    const session = await h2FrontSession(closers, relay);
    const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' });
    const answer = settle(stream, 3000);
    writeChunks(stream, { chunk: Buffer.alloc(64 * 1024, 'u'), count: 64 });
    const { status, body } = await answer;
    assert.is(status, 413, `the client got ${String(status)}: ${body}`);
    assert.is(body, 'too big');
    assert.ok(await waitFor(() => relay.inFlight === 0, 3000), `relay.inFlight stayed ${relay.inFlight}`);
  });

  test(`${name}: an upstream that resets its connection after the first bytes of a 4 MiB HTTP/2 upload: 502, then the client stream closes and nothing stays in flight`, async () => {
    const upstream = await startUpstream(
      (req) => {
        req.once('data', () => req.socket.destroy());
      },
      { streaming: true },
    );
    closers.push(() => upstream.close());
    const relay: Relay = createRelay({ targetBaseUrl: upstream.url, transport: transport() });
    const session = await h2FrontSession(closers, relay);
    const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' });
    const answer = settle(stream, 3000);
    writeChunks(stream, { chunk: Buffer.alloc(64 * 1024, 'u'), count: 64 });
    const { status, closed } = await answer;
    assert.is(status, 502);
    assert.ok(closed, 'the client stream is still open 3 s after the 502: nobody reads the rest of its upload, nor resets it');
    assert.ok(await waitFor(() => relay.inFlight === 0, 1000), `relay.inFlight stayed ${relay.inFlight}`);
  });
}

test.run();
