// Review s38i (core, commit 94d0cb5 "read a streamed request body only once connected"): an upstream
// that refuses an upload early. node:http's own way of refusing one (answer 413 with
// `Connection: close`, then close the socket while the body still comes) reached an HTTP/2 client as
// the upstream's 413 before this commit (http2-front-edges asserted it); since the body is piped
// from `onConnected`, the relay's next write hits EPIPE before it reads the 413 that is already in
// its socket, and the client gets 502 ERR_UPSTREAM_RESET every time. Envoy fixed the same
// (envoyproxy/envoy#2929): a refusal the upstream sent in full is what the client must see.
import http2 from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream, waitFor, writeChunks } from '@relay/testkit';
import { createRelay, type Relay, type Transport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { h2FrontSession } from './http2-helpers.js';

const test = suite('review s38i: an early 413 and a closed upstream connection');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

function collect(stream: http2.ClientHttp2Stream, limitMs: number): Promise<{ status: unknown; body: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    const finish = () => {
      clearTimeout(timer);
      resolve({ status: headers[':status'], body: Buffer.concat(chunks).toString() });
    };
    const timer = setTimeout(finish, limitMs);
    stream.on('response', (received) => (headers = received));
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
    const upstream = await startUpstream(
      (req, res) => {
        res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
        res.end('too big');
        req.socket.destroySoon?.();
      },
      { streaming: true },
    );
    closers.push(() => upstream.close());
    const relay: Relay = createRelay({ targetBaseUrl: upstream.url, timeout: { read: 3000, write: 3000 }, transport: transport() });
    const session = await h2FrontSession(closers, relay);
    const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/octet-stream' });
    const answer = collect(stream, 3000);
    writeChunks(stream, { chunk: Buffer.alloc(64 * 1024, 'u'), count: 64 });
    const { status, body } = await answer;
    assert.is(status, 413, `the client got ${String(status)}: ${body}`);
    assert.is(body, 'too big');
    assert.ok(await waitFor(() => relay.inFlight === 0, 3000), `relay.inFlight stayed ${relay.inFlight}`);
  });
}

test.run();
