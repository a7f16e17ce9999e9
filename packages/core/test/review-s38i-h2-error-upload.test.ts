// Review s38i (core, HTTP/2 front): the relay's own error answer while an HTTP/2 upload is still
// coming. An upstream answer before the upload ended is followed by draining the rest and a
// RST_STREAM(NO_ERROR) (`watchEarlyAnswer`), but a failure the relay answers itself (502 after the
// upstream reset mid-upload, a timeout) goes through `fail` → `sendError` only: the body,
// piped into the failed attempt and unpiped by its `release`, is left paused, the client stays
// blocked on flow control with its stream half-open for good, and the exchange counts in flight
// (holding `shutdown()` to its deadline). RFC 9113 §8.1: a server that answers before the request
// is complete resets the stream with NO_ERROR; nginx and Envoy do.
import http2 from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream, waitFor, writeChunks } from '@relay/testkit';
import { createRelay, type Relay, type Transport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { h2FrontSession } from './http2-helpers.js';

const test = suite('review s38i: the relay\'s own error during an HTTP/2 upload');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

/** Waits for the stream's answer and its close, at most `limitMs`. */
function settle(stream: http2.ClientHttp2Stream, limitMs: number): Promise<{ status: unknown; closed: boolean }> {
  return new Promise((resolve) => {
    let status: unknown;
    const finish = () => {
      clearTimeout(timer);
      resolve({ status, closed: stream.closed });
    };
    const timer = setTimeout(finish, limitMs);
    stream.on('response', (headers) => (status = headers[':status']));
    stream.resume();
    stream.on('error', () => {});
    stream.on('close', finish);
  });
}

const transports: Array<[string, () => Transport | undefined]> = [
  ['http', () => undefined],
  ['got', () => gotTransport()],
];

for (const [name, transport] of transports) {
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
