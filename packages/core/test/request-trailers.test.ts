import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, sendRaw, serveRelay, startUpstream, trailerEchoHandler, trailerEchoOf } from '@relay/testkit';
import { gotTransport } from '../src/transport/got.js';
import { createRelay, http2Transport, httpTransport, type HeaderRecord, type Stage, type Transport } from '../src/index.js';

// Issue 15: request trailers are relayed like response trailers, and stages can see and edit them.

/** An HTTP/1.1 upstream that answers with the body and the trailer fields it received. */
function trailerEcho() {
  return startUpstream(trailerEchoHandler);
}

const chunkedWithTrailers =
  'POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTrailer: x-digest\r\nConnection: close\r\n\r\n' +
  '5\r\nhello\r\n6\r\n world\r\n0\r\nx-digest: sha-256=abc\r\nauthorization: Bearer s3cret\r\nhost: evil.example\r\n\r\n';

const answerOf = trailerEchoOf;

const transports: Array<[string, () => Transport]> = [
  ['http', () => httpTransport()],
  ['got', () => gotTransport()],
];

for (const [name, transport] of transports) {
  test(`${name} transport: an HTTP/1.1 client's trailer fields reach the upstream after the body; head-only fields are left out`, async () => {
    const upstream = await trailerEcho();
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: transport() }));
    const answer = answerOf(await sendRaw(served.port, chunkedWithTrailers, 3000));
    assert.is(answer.body, 'hello world');
    assert.is(answer.trailers['x-digest'], 'sha-256=abc');
    assert.is(answer.trailers.authorization, undefined, 'credentials never travel in a trailer');
    assert.is(answer.trailers.host, undefined, 'routing never travels in a trailer');
    assert.match(String(upstream.requests[0]!.headers['transfer-encoding']), /chunked/);
    await served.close();
    await upstream.close();
  });
}

test('a stage sees and edits request trailers by wrapping request.trailers; a body with a length has none to offer', async () => {
  const upstream = await trailerEcho();
  const offered: boolean[] = [];
  const editTrailers: Stage = {
    name: 'edit-request-trailers',
    wrap: (next) =>
      function editRequestTrailers(request) {
        const client = request.trailers;
        offered.push(client !== undefined);
        if (client === undefined) return next(request);
        const edited = (): HeaderRecord => {
          const { 'x-digest': digest, ...rest } = client() ?? {};
          return { ...rest, 'x-digest-seen': String(digest), 'x-stage': 'yes' };
        };
        return next({ ...request, trailers: edited });
      },
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [editTrailers] }));
  const answer = answerOf(await sendRaw(served.port, chunkedWithTrailers, 3000));
  assert.equal(answer.trailers, { 'x-digest-seen': 'sha-256=abc', 'x-stage': 'yes' });
  const sized = answerOf(await sendRaw(served.port, 'POST /s HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi', 3000));
  assert.is(sized.body, 'hi');
  assert.equal(offered, [true, false]);
  await served.close();
  await upstream.close();
});

/** Sends a body with trailer fields from an HTTP/2 client and resolves with the JSON answer. */
function http2Upload(port: number, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<{ body: string; trailers: Record<string, string> }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-type': 'application/grpc', ...headers }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers(fields));
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('end', () => {
      session.close();
      resolve(JSON.parse(text) as { body: string; trailers: Record<string, string> });
    });
    stream.on('error', reject);
    stream.end('abc');
  });
}

async function h2cRelay(relay: ReturnType<typeof createRelay>): Promise<{ port: number; close(): Promise<void> }> {
  const server = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await relay.shutdown();
    },
  };
}

test('an HTTP/2 client’s trailer fields reach an HTTP/1.1 upstream (sent on chunked)', async () => {
  const upstream = await trailerEcho();
  const front = await h2cRelay(createRelay({ targetBaseUrl: upstream.url }));
  const answer = await http2Upload(front.port, { 'x-digest': 'sha-256=h2' });
  assert.is(answer.body, 'abc');
  assert.is(answer.trailers['x-digest'], 'sha-256=h2');
  await front.close();
  await upstream.close();
});

test('an HTTP/2 client’s body with a length keeps it to an HTTP/1.1 upstream; its trailer fields are dropped with a log line, not unsaid', async () => {
  const upstream = await trailerEcho();
  const logger = memoryLogger();
  const front = await h2cRelay(createRelay({ targetBaseUrl: upstream.url, logger }));
  const answer = await http2Upload(front.port, { 'x-digest': 'sha-256=sized' }, { 'content-length': '3' });
  assert.is(answer.body, 'abc');
  assert.is(upstream.requests[0]!.headers['content-length'], '3');
  assert.is(answer.trailers['x-digest'], undefined, 'HTTP/1.1 has no trailer section after a body with a length');
  const line = logger.lines.find((entry) => entry.message.startsWith('request trailers dropped'));
  assert.ok(line, 'the drop is logged');
  assert.equal(line!.fields.fields, ['x-digest']);
  await front.close();
  await upstream.close();
});

test('HTTP/2 both ways: the client’s trailer fields end the upstream stream (http2Transport)', async () => {
  const upstream = http2.createServer();
  upstream.on('stream', (stream) => {
    let body = '';
    let trailers: Record<string, string> = {};
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('trailers', (fields) => (trailers = fields as Record<string, string>));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ body, trailers }));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const front = await h2cRelay(createRelay({ targetBaseUrl: target, transport: http2Transport() }));
  const answer = await http2Upload(front.port, { 'x-digest': 'sha-256=both' });
  assert.is(answer.body, 'abc');
  assert.is(answer.trailers['x-digest'], 'sha-256=both');
  // A body without trailer fields still ends (an empty trailer section).
  const none = await http2Upload(front.port, {});
  assert.is(none.body, 'abc');
  assert.is(none.trailers['x-digest'], undefined);
  await front.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

test.run();
