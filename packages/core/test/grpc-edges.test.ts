// gRPC through the relay with a real @grpc/grpc-js client and server.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, delay, echoMethod, waitFor, writeChunks, type EchoMessage } from '@relay/testkit';
import { createRelay, http2Transport, type Relay, type RelayOptions } from '../src/index.js';

const test = suite('gRPC edges');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

type Message = EchoMessage;
const service = {
  never: echoMethod('/relay.review.Echo/Never'),
  meta: echoMethod('/relay.review.Echo/Meta'),
  flood: echoMethod('/relay.review.Echo/Flood', { responseStream: true }),
  bidi: echoMethod('/relay.review.Echo/Bidi', { requestStream: true, responseStream: true }),
  refuseUpload: echoMethod('/relay.review.Echo/RefuseUpload', { requestStream: true }),
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');
type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

interface Probe {
  cancelled: Array<{ text: string; at: number }>;
  written: number;
}

const bigMeta = { 'grpc.max_metadata_size': 256 * 1024 };

async function startService(probe: Probe): Promise<number> {
  const server = new grpc.Server(bigMeta);
  server.addService(service, {
    never: (call: grpc.ServerUnaryCall<Message, Message>) => {
      call.on('cancelled', () => probe.cancelled.push({ text: call.request.text, at: Date.now() }));
    },
    meta: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      const back = new grpc.Metadata();
      for (const [key, values] of Object.entries(call.metadata.toJSON())) {
        if (!key.startsWith('x-')) continue;
        for (const value of values as Array<string | Buffer>) back.add(key, value);
      }
      call.sendMetadata(back);
      const trailer = new grpc.Metadata();
      trailer.add('x-trailer-bin', Buffer.from([0, 255, 10, 13, 44, 32]));
      done(null, { text: 'ok', n: 0 }, trailer);
    },
    flood: (call: grpc.ServerWritableStream<Message, Message>) => {
      const payload = 'f'.repeat(64 * 1024);
      let stopped = false;
      call.on('cancelled', () => {
        stopped = true;
        probe.cancelled.push({ text: 'flood', at: Date.now() });
      });
      const pump = () => {
        while (!stopped && probe.written < call.request.n) {
          probe.written++;
          if (!call.write({ text: payload, n: probe.written })) {
            call.once('drain', pump);
            return;
          }
        }
        if (!stopped) call.end();
      };
      pump();
    },
    refuseUpload: (_call: grpc.ServerReadableStream<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      done({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'upload refused' });
    },
    bidi: (call: grpc.ServerDuplexStream<Message, Message>) => {
      call.on('data', (message: Message) => call.write({ text: message.text.toUpperCase(), n: message.n }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  closers.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  closers.push(() => server.forceShutdown());
  return port;
}

async function front(target: string, options: Partial<RelayOptions> = {}): Promise<{ client: Client; relay: Relay }> {
  const relay = createRelay({ targetBaseUrl: target, transport: http2Transport(), timeout: { read: 30_000 }, ...options });
  const server = http2.createServer(relay.handle);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new EchoClient(`127.0.0.1:${(server.address() as AddressInfo).port}`, grpc.credentials.createInsecure(), bigMeta) as Client;
  closers.push(async () => {
    client.close();
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await relay.shutdown({ timeout: 500 });
  });
  return { client, relay };
}

function unary(client: Client, name: string, request: Message, metadata = new grpc.Metadata(), options: grpc.CallOptions = {}) {
  return new Promise<{ error: grpc.ServiceError | null; response?: Message; headers?: grpc.Metadata; trailers?: grpc.Metadata }>((resolve) => {
    let headers: grpc.Metadata | undefined;
    let trailers: grpc.Metadata | undefined;
    const call = client[name]!(request, metadata, options, (error: grpc.ServiceError | null, response: Message) =>
      setImmediate(() => resolve({ error, response, headers, trailers })),
    ) as grpc.ClientUnaryCall;
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

test('a client deadline on a call the service never answers: the upstream call is cancelled at the deadline, not later', async () => {
  const probe: Probe = { cancelled: [], written: 0 };
  const port = await startService(probe);
  const { client, relay } = await front(`http://127.0.0.1:${port}`);
  const deadline = Date.now() + 400;
  const result = await unary(client, 'never', { text: 'deadline', n: 0 }, new grpc.Metadata(), { deadline });
  assert.is(result.error?.code, grpc.status.DEADLINE_EXCEEDED);
  assert.ok(await waitFor(() => probe.cancelled.length === 1, 3000), 'the service saw the call cancelled');
  assert.ok(probe.cancelled[0]!.at - deadline < 1500, `cancelled ${probe.cancelled[0]!.at - deadline} ms after the deadline`);
  assert.ok(await waitFor(() => relay.inFlight === 0, 2000));
});

test('the service is unreachable: the grpc-js client gets UNAVAILABLE with the relay’s message, not an HTTP status to guess from', async () => {
  const port = await closedPort();
  const { client } = await front(`http://127.0.0.1:${port}`);
  const result = await unary(client, 'never', { text: 'x', n: 0 });
  assert.is(result.error?.code, grpc.status.UNAVAILABLE, `${result.error?.code} ${result.error?.details}`);
  assert.is(result.error?.details, '502 Bad Gateway: the upstream service is unreachable (ERR_UPSTREAM_UNREACHABLE)');
});

test('a relay error to a gRPC call is trailers-only: HTTP 200, grpc-status and a percent-encoded grpc-message in the one HEADERS frame; other HTTP/2 requests keep the text answer', async () => {
  const port = await closedPort();
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, transport: http2Transport() });
  const server = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  closers.push(async () => {
    session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await relay.shutdown({ timeout: 500 });
  });
  const ask = (contentType: string) =>
    new Promise<{ headers: http2.IncomingHttpHeaders; endedWithHeaders: boolean; body: string }>((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/relay.review.Echo/Never', 'content-type': contentType, te: 'trailers' });
      let headers: http2.IncomingHttpHeaders = {};
      let endedWithHeaders = false;
      let body = '';
      stream.on('response', (received, flags) => {
        headers = received;
        endedWithHeaders = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      });
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => resolve({ headers, endedWithHeaders, body }));
      stream.on('error', reject);
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  const grpcAnswer = await ask('application/grpc+proto');
  assert.is(grpcAnswer.headers[':status'], 200);
  assert.is(grpcAnswer.headers['content-type'], 'application/grpc');
  assert.is(grpcAnswer.headers['grpc-status'], '14');
  assert.is(grpcAnswer.headers['grpc-message'], '502 Bad Gateway: the upstream service is unreachable (ERR_UPSTREAM_UNREACHABLE)');
  assert.ok(grpcAnswer.endedWithHeaders, 'trailers-only: END_STREAM on the HEADERS frame');
  assert.is(grpcAnswer.body, '');
  const plain = await ask('application/json');
  assert.is(plain.headers[':status'], 502);
  assert.match(plain.body, /ERR_UPSTREAM_UNREACHABLE/);
  const web = await ask('application/grpc-web');
  assert.is(web.headers[':status'], 502, 'gRPC-Web reads HTTP statuses');
});

test('the relay’s read timeout on a unary call: the client gets DEADLINE_EXCEEDED (the call may have run: not UNAVAILABLE), the service sees the cancel', async () => {
  const probe: Probe = { cancelled: [], written: 0 };
  const port = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`, { timeout: { read: 300 } });
  const result = await unary(client, 'never', { text: 'timeout', n: 0 });
  assert.is(result.error?.code, grpc.status.DEADLINE_EXCEEDED, `${result.error?.code} ${result.error?.details}`);
  assert.ok(await waitFor(() => probe.cancelled.length === 1, 3000));
});

test('large metadata (40 KB) and -bin metadata with several values pass both ways intact', async () => {
  const probe: Probe = { cancelled: [], written: 0 };
  const port = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`);
  const metadata = new grpc.Metadata();
  metadata.add('x-large', 'L'.repeat(40 * 1024));
  const bin1 = Buffer.from([0, 1, 2, 255, 44, 32, 10]);
  const bin2 = Buffer.from('second, with comma');
  metadata.add('x-data-bin', bin1);
  metadata.add('x-data-bin', bin2);
  metadata.add('x-plain', 'a');
  metadata.add('x-plain', 'b');
  const result = await unary(client, 'meta', { text: 'm', n: 0 }, metadata);
  assert.is(result.error, null, `${result.error?.code} ${result.error?.details}`);
  const headers = result.headers!;
  assert.is((headers.get('x-large')[0] as string).length, 40 * 1024);
  assert.equal(headers.get('x-data-bin').map((b) => Buffer.from(b as Buffer).toString('hex')), [bin1.toString('hex'), bin2.toString('hex')]);
  assert.equal(headers.get('x-plain').join('|').replace(/, ?/g, '|'), 'a|b');
  assert.equal(Buffer.from(result.trailers!.get('x-trailer-bin')[0] as Buffer).toString('hex'), '00ff0a0d2c20');
});

test('server streaming to a client that stops reading: the service is held back by flow control (bounded), and the stream completes when the client reads', async () => {
  const probe: Probe = { cancelled: [], written: 0 };
  const port = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`, { timeout: { read: 10_000 } });
  const total = 400; // 400 × 64 KiB = 25 MiB
  const call = client.flood!({ text: 'go', n: total }) as grpc.ClientReadableStream<Message>;
  let received = 0;
  let status: grpc.StatusObject | null = null;
  call.on('status', (s: grpc.StatusObject) => (status = s));
  call.on('error', () => {});
  call.once('data', () => {
    received++;
    call.pause();
  });
  await waitFor(() => received === 1, 3000);
  await delay(1500);
  const held = probe.written;
  assert.ok(held < 200, `the service wrote ${held} × 64 KiB messages while the client read 1`);
  call.on('data', () => received++);
  call.resume();
  assert.ok(await waitFor(() => status !== null, 15_000), 'the stream ended');
  assert.is(status!.code, grpc.status.OK, status!.details);
  assert.is(received, total);
});

test('a server-streaming call cancelled by the client mid-stream: the service sees the cancel', async () => {
  const probe: Probe = { cancelled: [], written: 0 };
  const port = await startService(probe);
  const { client, relay } = await front(`http://127.0.0.1:${port}`);
  const call = client.flood!({ text: 'go', n: 10_000 }) as grpc.ClientReadableStream<Message>;
  call.on('error', () => {});
  let received = 0;
  call.on('data', () => {
    if (++received === 3) call.cancel();
  });
  assert.ok(await waitFor(() => probe.cancelled.length === 1, 3000), 'the service saw the cancel');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
});

test('a bidirectional call longer than the read timeout, with messages more often than it, runs to the end', async () => {
  const probe: Probe = { cancelled: [], written: 0 };
  const port = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`, { timeout: { read: 800, write: 800 } });
  const call = client.bidi!() as grpc.ClientDuplexStream<Message, Message>;
  const got: string[] = [];
  let status: grpc.StatusObject | null = null;
  call.on('data', (m: Message) => got.push(m.text));
  call.on('status', (s: grpc.StatusObject) => (status = s));
  call.on('error', () => {});
  for (let i = 0; i < 8; i++) {
    call.write({ text: `m${i}`, n: i });
    await delay(300);
  }
  call.end();
  assert.ok(await waitFor(() => status !== null, 3000));
  assert.is(status!.code, grpc.status.OK, status!.details);
  assert.equal(got, Array.from({ length: 8 }, (_, i) => `M${i}`));
});

test('a client-streaming call the service fails at once while the client is still uploading: the client gets the status, nothing stays in flight', async () => {
  const probe: Probe = { cancelled: [], written: 0 };
  const port = await startService(probe);
  const { client, relay } = await front(`http://127.0.0.1:${port}`, { timeout: { read: 3000, write: 3000 } });
  const result = await new Promise<grpc.ServiceError | null>((resolve) => {
    const call = client.refuseUpload!((error: grpc.ServiceError | null) => resolve(error)) as grpc.ClientWritableStream<Message>;
    writeChunks(call, { chunk: { text: 'u'.repeat(64 * 1024), n: 0 }, count: 64 });
  });
  assert.is(result?.code, grpc.status.RESOURCE_EXHAUSTED, `${result?.code} ${result?.details}`);
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000), `relay.inFlight stayed ${relay.inFlight}`);
});

test.run();
