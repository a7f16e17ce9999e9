// Which grpc-status the relay's own 504s give a gRPC call: DEADLINE_EXCEEDED (4) when the service
// got the call or may have (a read or write timeout, a request deadline), so no client sends it again
// as "safe to retry"; UNAVAILABLE (14) when nothing reached the service (connect or pool timeout).
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { echoMethod, listenHttp2, waitFor, writeChunks, type EchoMessage } from '@relay/testkit';
import { AttemptBound, createRelay, http2Transport, RelayError, type Relay, type Stage } from '../src/index.js';
import { grpcStatusForHttp } from '../src/relay/grpc-answer.js';
import { h2FrontSession, type Closers } from './http2-helpers.js';
import { grpcFront, unary } from './grpc-helpers.js';

const test = suite('gRPC statuses of the relay’s timeouts');
const closers: Closers = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

type Message = EchoMessage;
const service = { slow: echoMethod('/relay.timeouts.Echo/Slow') } satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');

interface Probe {
  seen: string[];
  cancelled: string[];
}

async function startService(probe: Probe): Promise<number> {
  const server = new grpc.Server();
  server.addService(service, {
    slow: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      probe.seen.push(call.request.text);
      const timer = setTimeout(() => done(null, call.request), call.request.n);
      call.on('cancelled', () => {
        clearTimeout(timer);
        probe.cancelled.push(call.request.text);
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))),
  );
  closers.push(() => server.forceShutdown());
  return port;
}


/** An h2 upstream that hands each stream to `handler`. */
async function h2Upstream(handler: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void, settings: http2.Settings = {}): Promise<string> {
  const server = http2.createServer({ settings });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    handler(stream, headers);
  });
  const listening = await listenHttp2(server);
  closers.push(() => listening.close());
  return listening.url;
}

/** A gRPC call over a raw HTTP/2 session, its body `upload` chunks of 64 KiB: the trailers-only answer's head. */
function grpcCall(session: http2.ClientHttp2Session, upload = 1): Promise<IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': 'POST', ':path': '/relay.timeouts.Echo/Slow', 'content-type': 'application/grpc', te: 'trailers' });
    stream.on('response', (headers) => resolve(headers));
    stream.on('error', reject);
    stream.resume();
    writeChunks(stream, { chunk: Buffer.alloc(64 * 1024), count: upload });
  });
}

test('the relay’s own read timeout firing on a call the service already received answers DEADLINE_EXCEEDED (as Envoy and linkerd now do), never UNAVAILABLE, which tells clients to retry a call that may have run', async () => {
  const probe: Probe = { seen: [], cancelled: [] };
  const client = await grpcFront({ target: `http://127.0.0.1:${await startService(probe)}`, client: EchoClient, closers, relay: { timeout: { read: 300 } } });
  const result = await unary(client, 'slow', { text: 'late', n: 5000 });
  assert.equal(probe.seen, ['late'], 'the service received the call');
  assert.ok(await waitFor(() => probe.cancelled.length === 1, 3000), 'the service saw the cancel');
  assert.is(result.error?.code, grpc.status.DEADLINE_EXCEEDED, `${result.error?.code} ${result.error?.details}`);
});

test('a write timeout (the service stopped reading the call’s messages): grpc-status 4 with the relay’s ERR_WRITE_TIMEOUT message', async () => {
  const url = await h2Upstream((stream) => stream.pause());
  const session = await h2FrontSession(closers, createRelay({ targetBaseUrl: url, transport: http2Transport(), timeout: { write: 300, read: 5000 } }));
  const head = await grpcCall(session, 64);
  assert.is(head[':status'], 200);
  assert.is(head['grpc-status'], '4');
  assert.match(String(head['grpc-message']), /ERR_WRITE_TIMEOUT/);
});

test('a stage’s request deadline (ERR_DEADLINE, as retry({ deadline }) raises) cutting a call in flight: grpc-status 4', async () => {
  const url = await h2Upstream(() => {});
  const deadline: Stage = {
    name: 'deadline',
    wrap: (next) =>
      function deadlineStage(request) {
        const bound = new AttemptBound(request);
        const timer = setTimeout(() => bound.cut(new RelayError('ERR_DEADLINE', 'deadline of 200 ms passed')), 200);
        return next({ ...request, bound }).finally(() => clearTimeout(timer));
      },
  };
  const session = await h2FrontSession(closers, createRelay({ targetBaseUrl: url, transport: http2Transport(), stages: [deadline] }));
  const head = await grpcCall(session);
  assert.is(head['grpc-status'], '4');
  assert.match(String(head['grpc-message']), /ERR_DEADLINE/);
});

test('a pool timeout (the call never left the relay) stays UNAVAILABLE: safe to send again', async () => {
  // One stream at a time upstream, held: the second call waits for a slot past timeout.pool.
  const url = await h2Upstream(() => {}, { maxConcurrentStreams: 1 });
  const relay: Relay = createRelay({ targetBaseUrl: url, transport: http2Transport(), timeout: { pool: 200, read: 5000 } });
  const session = await h2FrontSession(closers, relay);
  const holding = session.request({ ':method': 'POST', ':path': '/hold', 'content-type': 'application/grpc' });
  holding.on('error', () => {});
  holding.write(Buffer.alloc(5));
  await waitFor(() => relay.inFlight === 1, 2000);
  const head = await grpcCall(session);
  assert.is(head['grpc-status'], '14');
  assert.match(String(head['grpc-message']), /ERR_POOL_TIMEOUT/);
  holding.close();
});

test('the mapping: 504s by their code, other statuses by gRPC’s HTTP mapping', () => {
  assert.is(grpcStatusForHttp({ status: 504, code: 'ERR_READ_TIMEOUT' }), 4);
  assert.is(grpcStatusForHttp({ status: 504, code: 'ERR_WRITE_TIMEOUT' }), 4);
  assert.is(grpcStatusForHttp({ status: 504, code: 'ERR_DEADLINE' }), 4);
  assert.is(grpcStatusForHttp({ status: 504, code: 'ERR_CONNECT_TIMEOUT' }), 14);
  assert.is(grpcStatusForHttp({ status: 504, code: 'ERR_POOL_TIMEOUT' }), 14);
  assert.is(grpcStatusForHttp({ status: 504 }), 14, 'a stage’s 504 without a deadline code');
  assert.is(grpcStatusForHttp({ status: 502, code: 'ERR_UPSTREAM_UNREACHABLE' }), 14);
  assert.is(grpcStatusForHttp({ status: 429 }), 14);
  assert.is(grpcStatusForHttp({ status: 404 }), 12);
  assert.is(grpcStatusForHttp({ status: 413, code: 'ERR_BODY_TOO_LARGE' }), 2);
});

test.run();
