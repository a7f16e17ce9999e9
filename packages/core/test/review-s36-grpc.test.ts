// Review s36 (issue 15), gRPC with real @grpc/grpc-js clients and servers through Relay (HTTP/2
// front, http2Transport upstream): TLS on both hops, long streams with backpressure both ways,
// grpc-timeout reaching the service, deadlines and cancels on bidi calls, statuses with unicode
// messages (trailers-only and after messages), the service's max concurrent streams, an upstream
// that goes away (GOAWAY, killed), compression, and the relay's own refusals as gRPC statuses.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, echoMethod, tlsFixture, waitFor, type EchoMessage } from '@relay/testkit';
import { createRelay, http2Transport, type Http2TransportOptions, type Relay, type RelayOptions } from '../src/index.js';

const test = suite('review s36: gRPC');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

type Message = EchoMessage;
const service = {
  unary: echoMethod('/relay.s36.Echo/Unary'),
  deadline: echoMethod('/relay.s36.Echo/Deadline'),
  slow: echoMethod('/relay.s36.Echo/Slow'),
  fail: echoMethod('/relay.s36.Echo/Fail'),
  failLate: echoMethod('/relay.s36.Echo/FailLate', { responseStream: true }),
  many: echoMethod('/relay.s36.Echo/Many', { responseStream: true }),
  sum: echoMethod('/relay.s36.Echo/Sum', { requestStream: true }),
  bidi: echoMethod('/relay.s36.Echo/Bidi', { requestStream: true, responseStream: true }),
  hold: echoMethod('/relay.s36.Echo/Hold', { requestStream: true, responseStream: true }),
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');
type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
const big = { 'grpc.max_receive_message_length': 16 * 1024 * 1024, 'grpc.max_send_message_length': 16 * 1024 * 1024 };

const unicodeDetails = 'nö such ítem ✓ 100% 日本語 / emoji 🚀';

interface Probe {
  cancelled: string[];
  deadlines: number[];
  active: number;
  maxActive: number;
  bidiReceived: number;
}

async function startService(probe: Probe, options: { tls?: boolean; serverOptions?: grpc.ServerOptions } = {}): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server({ ...big, ...options.serverOptions });
  server.addService(service, {
    unary: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => done(null, { text: call.request.text, n: call.request.n + 1 }),
    deadline: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      const deadline = call.getDeadline();
      probe.deadlines.push(deadline instanceof Date ? deadline.getTime() : Number(deadline));
      done(null, call.request);
    },
    slow: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      probe.active++;
      probe.maxActive = Math.max(probe.maxActive, probe.active);
      setTimeout(() => {
        probe.active--;
        done(null, call.request);
      }, call.request.n);
    },
    fail: (_call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => done({ code: grpc.status.FAILED_PRECONDITION, details: unicodeDetails }),
    failLate: (call: grpc.ServerWritableStream<Message, Message>) => {
      call.write({ text: 'first', n: 1 });
      call.write({ text: 'second', n: 2 });
      call.emit('error', { code: grpc.status.ABORTED, details: unicodeDetails });
    },
    many: (call: grpc.ServerWritableStream<Message, Message>) => {
      let n = 0;
      const pump = () => {
        while (n < call.request.n) {
          if (!call.write({ text: call.request.text, n: n++ })) {
            call.once('drain', pump);
            return;
          }
        }
        call.end();
      };
      pump();
    },
    sum: (call: grpc.ServerReadableStream<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      let sum = 0;
      let bytes = 0;
      call.on('data', (message: Message) => {
        sum += message.n;
        bytes += message.text.length;
      });
      call.on('end', () => done(null, { text: String(bytes), n: sum }));
    },
    bidi: (call: grpc.ServerDuplexStream<Message, Message>) => {
      call.on('data', (message: Message) => {
        probe.bidiReceived++;
        if (!call.write({ text: message.text, n: message.n })) {
          call.pause();
          call.once('drain', () => call.resume());
        }
      });
      call.on('end', () => call.end());
    },
    hold: (call: grpc.ServerDuplexStream<Message, Message>) => {
      call.on('data', (message: Message) => call.write(message));
      call.on('cancelled', () => probe.cancelled.push('hold'));
    },
  });
  const credentials = options.tls
    ? grpc.ServerCredentials.createSsl(null, [{ private_key: tlsFixture.key, cert_chain: tlsFixture.cert }])
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (error, p) => (error ? reject(error) : resolve(p))));
  closers.push(() => server.forceShutdown());
  return { port, server };
}

async function front(
  target: string,
  options: Partial<RelayOptions> = {},
  transport: Http2TransportOptions = {},
  secure = false,
): Promise<{ client: Client; relay: Relay; port: number }> {
  const relay = createRelay({ targetBaseUrl: target, transport: http2Transport(transport), timeout: { read: 30_000 }, ...options });
  const server = secure ? http2.createSecureServer({ ...tlsFixture, allowHTTP1: true }, relay.handle) : http2.createServer(relay.handle);
  const sessions = new Set<http2.Http2Session>();
  server.on('session', (s: http2.Http2Session) => sessions.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const credentials = secure ? grpc.credentials.createSsl(tlsFixture.cert) : grpc.credentials.createInsecure();
  const client = new EchoClient(`localhost:${port}`, credentials, { ...big, 'grpc.ssl_target_name_override': 'localhost' }) as Client;
  closers.push(async () => {
    client.close();
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await relay.shutdown({ timeout: 500 });
  });
  return { client, relay, port };
}

const newProbe = (): Probe => ({ cancelled: [], deadlines: [], active: 0, maxActive: 0, bidiReceived: 0 });

function unary(client: Client, name: string, request: Message, options: grpc.CallOptions = {}) {
  return new Promise<{ error: grpc.ServiceError | null; response?: Message }>((resolve) => {
    client[name]!(request, new grpc.Metadata(), options, (error: grpc.ServiceError | null, response: Message) => resolve({ error, response }));
  });
}

function readAll(call: grpc.ClientReadableStream<Message>): Promise<{ messages: Message[]; status: grpc.StatusObject }> {
  return new Promise((resolve) => {
    const messages: Message[] = [];
    call.on('data', (message: Message) => messages.push(message));
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => setImmediate(() => resolve({ messages, status })));
  });
}

test('TLS on both hops (createSecureServer front, https: upstream with ALPN h2): unary and server-streaming calls succeed', async () => {
  // Issue 15: createSecureServer front, `https:` targets with ALPN h2, the gRPC matrix.
  const probe = newProbe();
  const { port } = await startService(probe, { tls: true });
  const { client } = await front(`https://localhost:${port}`, { tls: { ca: tlsFixture.cert } } as Partial<RelayOptions>, { fallback: 'refuse' }, true);
  const answer = await unary(client, 'unary', { text: 'tls', n: 1 });
  assert.is(answer.error, null, `${answer.error?.code} ${answer.error?.details}`);
  assert.equal(answer.response, { text: 'tls', n: 2 });
  const streamed = await readAll(client.many!({ text: 's', n: 50 }) as grpc.ClientReadableStream<Message>);
  assert.is(streamed.status.code, grpc.status.OK, streamed.status.details);
  assert.is(streamed.messages.length, 50);
});

test('bidirectional call with 2000 messages of 16 KiB each way, both sides honouring backpressure: every message echoed, in order', async () => {
  // Issue 15: "bidirectional calls"; the brief: many messages and backpressure.
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client, relay } = await front(`http://127.0.0.1:${port}`);
  const call = client.bidi!() as grpc.ClientDuplexStream<Message, Message>;
  const total = 2000;
  const payload = 'b'.repeat(16 * 1024);
  const result = new Promise<{ ns: number[]; status: grpc.StatusObject }>((resolve) => {
    const ns: number[] = [];
    call.on('data', (message: Message) => ns.push(message.n));
    call.on('error', () => {});
    call.on('status', (status: grpc.StatusObject) => setImmediate(() => resolve({ ns, status })));
  });
  let n = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (n < total) {
        if (!call.write({ text: payload, n: n++ })) {
          call.once('drain', pump);
          return;
        }
      }
      call.end();
      resolve();
    };
    pump();
  });
  const { ns, status } = await result;
  assert.is(status.code, grpc.status.OK, status.details);
  assert.is(ns.length, total);
  assert.ok(ns.every((value, index) => value === index), 'in order');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
});

test('client streaming: three 5 MiB messages reach the service whole (4+ MiB messages upstream)', async () => {
  // Issue 15: "4 MiB messages"; client streaming with large messages.
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`);
  const text = 'c'.repeat(5 * 1024 * 1024);
  const answer = await new Promise<{ error: grpc.ServiceError | null; response?: Message }>((resolve) => {
    const call = client.sum!((error: grpc.ServiceError | null, response: Message) => resolve({ error, response })) as grpc.ClientWritableStream<Message>;
    for (let n = 1; n <= 3; n++) call.write({ text, n });
    call.end();
  });
  assert.is(answer.error, null, `${answer.error?.code} ${answer.error?.details}`);
  assert.equal(answer.response, { text: String(3 * text.length), n: 6 });
});

test('server streaming: 20 000 small messages arrive, in order, with status OK', async () => {
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`);
  const { messages, status } = await readAll(client.many!({ text: 'm', n: 20_000 }) as grpc.ClientReadableStream<Message>);
  assert.is(status.code, grpc.status.OK, status.details);
  assert.is(messages.length, 20_000);
  assert.ok(messages.every((message, index) => message.n === index));
});

test('the client deadline reaches the service as grpc-timeout: the service sees a deadline close to the client’s', async () => {
  // gRPC over HTTP/2 (PROTOCOL-HTTP2.md): grpc-timeout is a request header the service uses; a
  // proxy passes it on (Envoy does, adjusting it down only).
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`);
  const deadline = Date.now() + 20_000;
  const answer = await unary(client, 'deadline', { text: 'd', n: 0 }, { deadline });
  assert.is(answer.error, null, `${answer.error?.code} ${answer.error?.details}`);
  const seen = probe.deadlines[0]!;
  assert.ok(Number.isFinite(seen), `the service saw no deadline (${seen})`);
  assert.ok(Math.abs(seen - deadline) < 2000, `the service's deadline is ${seen - deadline} ms off the client's`);
});

test('a bidirectional call past its deadline: DEADLINE_EXCEEDED at the client, and the service sees the call cancelled', async () => {
  // Issue 15: "a deadline set by the client ends the upstream call".
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client, relay } = await front(`http://127.0.0.1:${port}`);
  const call = client.hold!({ deadline: Date.now() + 500 }) as grpc.ClientDuplexStream<Message, Message>;
  const status = new Promise<grpc.StatusObject>((resolve) => {
    call.on('error', () => {});
    call.on('data', () => {});
    call.on('status', resolve);
  });
  call.write({ text: 'x', n: 1 });
  assert.is((await status).code, grpc.status.DEADLINE_EXCEEDED);
  assert.ok(await waitFor(() => probe.cancelled.includes('hold'), 3000), 'the service saw the cancel');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
});

test('a bidirectional call cancelled by the client mid-stream: the service sees the call cancelled', async () => {
  // Issue 15: "a cancelled call cancels upstream".
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client, relay } = await front(`http://127.0.0.1:${port}`);
  const call = client.hold!() as grpc.ClientDuplexStream<Message, Message>;
  call.on('error', () => {});
  let echoed = 0;
  call.on('data', () => echoed++);
  call.write({ text: 'x', n: 1 });
  assert.ok(await waitFor(() => echoed === 1, 3000), 'the first message came back');
  call.cancel();
  assert.ok(await waitFor(() => probe.cancelled.includes('hold'), 3000), 'the service saw the cancel');
  assert.ok(await waitFor(() => relay.inFlight === 0, 3000));
});

test('a unicode grpc-message reaches the client unchanged, in a trailers-only answer and in trailers after messages', async () => {
  // gRPC PROTOCOL-HTTP2.md: grpc-message is percent-encoded UTF-8; the relay must pass it byte for byte.
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`);
  const only = await unary(client, 'fail', { text: 'f', n: 0 });
  assert.is(only.error?.code, grpc.status.FAILED_PRECONDITION);
  assert.is(only.error?.details, unicodeDetails);
  const late = await readAll(client.failLate!({ text: 'f', n: 0 }) as grpc.ClientReadableStream<Message>);
  assert.is(late.messages.length, 2);
  assert.is(late.status.code, grpc.status.ABORTED);
  assert.is(late.status.details, unicodeDetails);
});

test('the service allows 4 concurrent streams: 60 slow calls on one client connection all succeed, never more than 4 at the service at once', async () => {
  // Issue 15: "maxConcurrentStreams respected (queue, then the pool timeout)", "100 concurrent streams".
  const probe = newProbe();
  const { port } = await startService(probe, { serverOptions: { 'grpc.max_concurrent_streams': 4 } });
  const { client } = await front(`http://127.0.0.1:${port}`);
  const answers = await Promise.all(Array.from({ length: 60 }, (_, n) => unary(client, 'slow', { text: `s${n}`, n: 30 })));
  const failed = answers.filter((answer) => answer.error !== null);
  assert.is(failed.length, 0, failed.map((answer) => `${answer.error!.code} ${answer.error!.details}`).slice(0, 3).join('; '));
  assert.ok(probe.maxActive <= 4, `the service ran ${probe.maxActive} calls at once`);
});

test('the service shuts down gracefully (GOAWAY) during a server stream: the stream in flight completes OK', async () => {
  // Issue 15: "GOAWAY ... handled without failing streams"; RFC 9113 §6.8 streams below last-stream-id complete.
  const probe = newProbe();
  const { port, server } = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`);
  const call = client.many!({ text: 'g'.repeat(1024), n: 3000 }) as grpc.ClientReadableStream<Message>;
  const result = readAll(call);
  await delay(50);
  server.tryShutdown(() => {});
  const { messages, status } = await result;
  assert.is(status.code, grpc.status.OK, status.details);
  assert.is(messages.length, 3000);
});

test('the service is killed while a unary call waits for its answer: the client gets UNAVAILABLE promptly', async () => {
  // gRPC status codes: UNAVAILABLE is "the service is currently unavailable ... a transient condition".
  const probe = newProbe();
  const { port, server } = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`);
  const started = Date.now();
  const pending = unary(client, 'slow', { text: 'k', n: 5000 });
  await waitFor(() => probe.active === 1, 3000);
  server.forceShutdown();
  const answer = await pending;
  assert.is(answer.error?.code, grpc.status.UNAVAILABLE, `${answer.error?.code} ${answer.error?.details}`);
  assert.ok(Date.now() - started < 3000, `answered after ${Date.now() - started} ms`);
});

test('gzip-compressed messages (grpc-encoding) pass through both ways', async () => {
  const probe = newProbe();
  const { port } = await startService(probe, { serverOptions: { 'grpc.default_compression_algorithm': 2 } });
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, transport: http2Transport() });
  const server = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sessions = new Set<http2.Http2Session>();
  server.on('session', (s: http2.Http2Session) => sessions.add(s));
  const client = new EchoClient(`127.0.0.1:${(server.address() as AddressInfo).port}`, grpc.credentials.createInsecure(), {
    'grpc.default_compression_algorithm': 2,
  }) as Client;
  closers.push(async () => {
    client.close();
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await relay.shutdown({ timeout: 500 });
  });
  const text = 'z'.repeat(200_000);
  const answer = await unary(client, 'unary', { text, n: 1 });
  assert.is(answer.error, null, `${answer.error?.code} ${answer.error?.details}`);
  assert.is(answer.response!.text.length, text.length);
});

test('a relay that is shutting down answers a gRPC call so the client reads UNAVAILABLE', async () => {
  // gRPC "HTTP to gRPC status code mapping": 503 → UNAVAILABLE; the client must be able to read it.
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client, relay } = await front(`http://127.0.0.1:${port}`);
  assert.is((await unary(client, 'unary', { text: 'warm', n: 0 })).error, null);
  const pending = unary(client, 'slow', { text: 'in-flight', n: 400 });
  await waitFor(() => probe.active === 1, 3000);
  const stopping = relay.shutdown({ timeout: 3000 });
  const late = await unary(client, 'unary', { text: 'late', n: 0 });
  assert.is(late.error?.code, grpc.status.UNAVAILABLE, `${late.error?.code} ${late.error?.details}`);
  const first = await pending;
  assert.is(first.error, null, `the call in flight completes: ${first.error?.code} ${first.error?.details}`);
  await stopping;
});

test('20 concurrent calls with 4 MiB messages each way on one client connection: every call succeeds', async () => {
  // Issue 15: "4 MiB messages; 100 concurrent streams on one connection" — together, as a busy client sends them.
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`);
  const text = 'q'.repeat(4 * 1024 * 1024);
  const answers = await Promise.all(Array.from({ length: 20 }, (_, n) => unary(client, 'unary', { text, n })));
  const failed = answers.filter((answer) => answer.error !== null);
  assert.is(failed.length, 0, failed.map((answer) => `${answer.error!.code} ${answer.error!.details}`).slice(0, 3).join('; '));
  assert.ok(answers.every((answer, n) => answer.response!.n === n + 1 && answer.response!.text.length === text.length));
});

test('a server stream with no messages: status OK (headers, then trailers, no DATA frame) reaches the client', async () => {
  // gRPC PROTOCOL-HTTP2.md: Response → Response-Headers *Length-Prefixed-Message Trailers; zero messages is valid.
  const probe = newProbe();
  const { port } = await startService(probe);
  const { client } = await front(`http://127.0.0.1:${port}`);
  const empty = await readAll(client.many!({ text: 'e', n: 0 }) as grpc.ClientReadableStream<Message>);
  assert.is(empty.status.code, grpc.status.OK, empty.status.details);
  assert.is(empty.messages.length, 0);
});

test.run();
