// Found by review s39 (attack run): the HTTP/2 front over TLS (http2.createSecureServer with
// testkit's tlsFixture, relay.handle), as docs/frameworks.md mounts it. A client whose upload
// stops (it sent the head and a first DATA frame, then nothing) gets its answer, the relay's own
// 408 ERR_CLIENT_TIMEOUT or an upstream's early 413, and then keeps its stream open by simply
// never sending again. RFC 9113 §8.1: after a complete response the server may RST_STREAM with
// NO_ERROR so the client stops; nginx does. HTTP/1.1 closes the connection in the same case.
// Before, the relay reset the stream only when another DATA frame arrived, so a stalled client
// (the very client a 408 is about) holds its stream and an in-flight count for good, and
// shutdown() waits for its deadline on each. Streams per connection are unlimited by default, so
// one connection can hold thousands.
import http2 from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, listenHttp2, startUpstream, tlsFixture, waitFor } from '@relay/testkit';
import { createRelay, type Relay, type RelayOptions } from '../src/index.js';
import { refuseUploadEarly } from './http2-helpers.js';

const test = suite('HTTP/2 stalled uploads after their answer');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

async function tlsFront(options: RelayOptions): Promise<{ relay: Relay; session: http2.ClientHttp2Session }> {
  const relay = createRelay(options);
  const front = await listenHttp2(http2.createSecureServer({ ...tlsFixture }, relay.handle));
  const session = http2.connect(front.url.replace('http:', 'https:'), { rejectUnauthorized: false });
  session.on('error', () => {});
  closers.push(async () => {
    session.destroy();
    await front.close();
    await relay.shutdown({ timeout: 500 });
  });
  return { relay, session };
}

function stalledUpload(session: http2.ClientHttp2Session): { stream: http2.ClientHttp2Stream; status: Promise<number | undefined> } {
  const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' }, { endStream: false });
  stream.on('error', () => {});
  stream.write(Buffer.alloc(1024, 'u')); // one DATA frame, then nothing: never END_STREAM
  stream.resume();
  const status = new Promise<number | undefined>((resolve) => {
    stream.on('response', (headers) => resolve(headers[':status'] as number));
    stream.on('close', () => resolve(undefined));
  });
  return { stream, status };
}

test('a stalled HTTP/2 upload the relay answers 408 (timeout.write): the stream is then closed and nothing stays in flight', async () => {
  const upstream = await startUpstream((_req, res) => res.end('never'), { streaming: false });
  closers.push(() => upstream.close());
  const { relay, session } = await tlsFront({ targetBaseUrl: upstream.url, timeout: { write: 400, read: 5000 } });
  const { stream, status } = stalledUpload(session);
  assert.is(await status, 408);
  const closed = await waitFor(() => stream.closed && relay.inFlight === 0, 3000);
  assert.ok(closed, `2 s after its 408 the stream is ${stream.closed ? 'closed' : 'still open'} and relay.inFlight is ${relay.inFlight}`);
  // What it costs: 40 such streams on the one connection, all answered, all still counted.
  const more = Array.from({ length: 40 }, () => stalledUpload(session));
  await Promise.all(more.map((one) => one.status));
  await delay(1500);
  assert.is(relay.inFlight, 0, 'stalled streams answered 408 still counted in flight');
});

test('a stalled HTTP/2 upload the upstream answers early (413): the stream is then closed and nothing stays in flight', async () => {
  const upstream = await startUpstream(refuseUploadEarly, { streaming: true });
  closers.push(() => upstream.close());
  const { relay, session } = await tlsFront({ targetBaseUrl: upstream.url, timeout: { write: 30_000, read: 5000 } });
  const { stream, status } = stalledUpload(session);
  assert.is(await status, 413);
  const closed = await waitFor(() => stream.closed && relay.inFlight === 0, 3000);
  assert.ok(closed, `2 s after its 413 the stream is ${stream.closed ? 'closed' : 'still open'} and relay.inFlight is ${relay.inFlight}`);
});

test.run();
