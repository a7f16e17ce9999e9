// @relay/observe on gRPC calls (a real @grpc/grpc-js client and server) through an HTTP/2
// front and http2Transport: what the access line, the metrics and the span say, and that trailers
// pass intact with observe on.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { SpanStatusCode, propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRelay, http2Transport, textResponse, type Relay, type Stage } from '@relay/core';
import { closedPort, echoMethod, waitFor, type EchoMessage } from '@relay/testkit';
import { observe } from '../src/index.js';

propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

type Message = EchoMessage;
const service = {
  unary: echoMethod('/review.Echo/Unary'),
  fail: echoMethod('/review.Echo/Fail'),
  serverStream: echoMethod('/review.Echo/ServerStream', { responseStream: true }),
  streamThenFail: echoMethod('/review.Echo/StreamThenFail', { responseStream: true }),
  slow: echoMethod('/review.Echo/Slow'),
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');
type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

interface Setup {
  client: Client;
  relay: Relay;
  lines: Record<string, unknown>[];
  registry: Registry;
  target: string;
  close(): Promise<void>;
}

const cancelled: string[] = [];
const cancelledAt = new Map<string, number>();

async function setup(): Promise<Setup> {
  const server = new grpc.Server();
  server.addService(service, {
    unary: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      call.sendMetadata(new grpc.Metadata());
      done(null, { text: call.request.text, n: call.request.n + 1 });
    },
    fail: (_call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => done({ code: grpc.status.NOT_FOUND, details: 'no such item' }),
    serverStream: (call: grpc.ServerWritableStream<Message, Message>) => {
      for (let n = 0; n < call.request.n; n++) call.write({ text: call.request.text, n });
      call.end();
    },
    slow: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      const timer = setTimeout(() => done(null, call.request), 2500);
      call.on('cancelled', () => {
        clearTimeout(timer);
        cancelled.push(call.request.text);
        cancelledAt.set(call.request.text, performance.now());
      });
    },
    streamThenFail: (call: grpc.ServerWritableStream<Message, Message>) => {
      call.write({ text: 'one', n: 1 });
      call.write({ text: 'two', n: 2 });
      const trailer = new grpc.Metadata();
      trailer.set('x-review-trailer', 'kept');
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'quota', metadata: trailer });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  const target = `http://127.0.0.1:${port}`;
  const lines: Record<string, unknown>[] = [];
  const registry = new Registry();
  const obs = observe({ accessLog: { stream: { write: (line: string) => lines.push(JSON.parse(line)) } }, metrics: { registry, relay: 'grpc' }, tracing: { tracerProvider } });
  const relay = createRelay({ targetBaseUrl: target, transport: http2Transport(), stages: [obs.request, obs.attempt], timeout: { read: 10_000 } });
  const front = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const client = new EchoClient(`127.0.0.1:${(front.address() as AddressInfo).port}`, grpc.credentials.createInsecure()) as Client;
  return {
    client,
    relay,
    lines,
    registry,
    target,
    close: async () => {
      client.close();
      await relay.shutdown({ timeout: 500 });
      await new Promise<void>((resolve) => front.close(() => resolve()));
      server.forceShutdown();
    },
  };
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function unary(client: Client, name: string, request: Message): Promise<{ error: grpc.ServiceError | null; response?: Message }> {
  return new Promise((resolve) => client[name]!(request, (error: grpc.ServiceError | null, response?: Message) => resolve({ error, response })));
}

test('gRPC unary OK: one line, 200, bytes of the framed messages, POST path, one span; 2xx counted', async () => {
  exporter.reset();
  const s = await setup();
  try {
    const { error, response } = await unary(s.client, 'unary', { text: 'hi', n: 1 });
    assert.is(error, null);
    assert.equal(response, { text: 'hi', n: 2 });
    assert.ok(await waitFor(() => s.lines.length === 1));
    const line = s.lines[0]!;
    const requestBytes = 5 + service.unary.requestSerialize({ text: 'hi', n: 1 }).length;
    const responseBytes = 5 + service.unary.requestSerialize({ text: 'hi', n: 2 }).length;
    assert.equal(
      { method: line.method, path: line.path, status: line.status, bytesIn: line.bytesIn, bytesOut: line.bytesOut, code: line.code, attempts: line.attempts },
      { method: 'POST', path: '/review.Echo/Unary', status: 200, bytesIn: requestBytes, bytesOut: responseBytes, code: null, attempts: 1 },
    );
    const text = await s.registry.metrics();
    assert.is(value(text, `relay_requests_total{relay="grpc",route="",method="POST",status_class="2xx",target="${s.target}"}`), 1);
    assert.ok(await waitFor(() => exporter.getFinishedSpans().length === 1));
    assert.is(exporter.getFinishedSpans()[0]!.attributes['http.response.status_code'], 200);
  } finally {
    await s.close();
  }
});

test('gRPC server streaming: bytesOut is every message, duration covers the stream', async () => {
  const s = await setup();
  try {
    const call = s.client.serverStream!({ text: 'x', n: 20 }) as grpc.ClientReadableStream<Message>;
    const got: Message[] = [];
    await new Promise<void>((resolve, reject) => {
      call.on('data', (message: Message) => got.push(message));
      call.on('end', () => resolve());
      call.on('error', reject);
    });
    assert.is(got.length, 20);
    assert.ok(await waitFor(() => s.lines.length === 1));
    const expected = got.reduce((sum, message) => sum + 5 + service.unary.requestSerialize(message).length, 0);
    assert.is(s.lines[0]!.bytesOut, expected);
    assert.is(s.lines[0]!.status, 200);
  } finally {
    await s.close();
  }
});

test('gRPC trailers-only failure (NOT_FOUND): the client gets the status; the line is written once, no crash', async () => {
  const s = await setup();
  try {
    const { error } = await unary(s.client, 'fail', { text: 'x', n: 0 });
    assert.is(error?.code, grpc.status.NOT_FOUND);
    assert.is(error?.details, 'no such item');
    assert.ok(await waitFor(() => s.lines.length === 1));
    assert.is(s.lines[0]!.status, 200);
    assert.is(s.lines[0]!.bytesOut, 0);
  } finally {
    await s.close();
  }
});

test('gRPC streaming call failing in trailers: trailers reach the client intact with observe on', async () => {
  const s = await setup();
  try {
    const call = s.client.streamThenFail!({ text: 'x', n: 0 }) as grpc.ClientReadableStream<Message>;
    const got: Message[] = [];
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      call.on('data', (message: Message) => got.push(message));
      call.on('error', (e: grpc.ServiceError) => resolve(e));
    });
    assert.is(got.length, 2);
    assert.is(error.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.is(error.details, 'quota');
    assert.equal(error.metadata.get('x-review-trailer'), ['kept']);
    assert.ok(await waitFor(() => s.lines.length === 1));
  } finally {
    await s.close();
  }
});

test('gRPC failing calls are visible to an operator: grpcStatus in the line, rpc.grpc.status_code and ERROR on the span, relay_grpc_calls_total by status', async () => {
  exporter.reset();
  const s = await setup();
  try {
    assert.is((await unary(s.client, 'unary', { text: 'ok', n: 0 })).error, null);
    await unary(s.client, 'fail', { text: 'x', n: 0 });
    const call = s.client.streamThenFail!({ text: 'x', n: 0 }) as grpc.ClientReadableStream<Message>;
    await new Promise<void>((resolve) => {
      call.on('data', () => {});
      call.on('error', () => resolve());
    });
    assert.ok(await waitFor(() => s.lines.length === 3 && exporter.getFinishedSpans().length === 3));
    // OK, NOT_FOUND as a trailers-only answer, RESOURCE_EXHAUSTED in the trailers after two messages.
    assert.equal(s.lines.map((line) => [line.status, line.grpcStatus]), [[200, 0], [200, 5], [200, 8]]);
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.map((span) => [span.attributes['rpc.grpc.status_code'], span.status.code]), [[0, SpanStatusCode.UNSET], [5, SpanStatusCode.ERROR], [8, SpanStatusCode.ERROR]]);
    const text = await s.registry.metrics();
    for (const status of ['0', '5', '8']) assert.is(value(text, `relay_grpc_calls_total{relay="grpc",route="",grpc_status="${status}"}`), 1, text);
  } finally {
    await s.close();
  }
});

test('the relay’s own error to a gRPC call (service unreachable): the line says what the client got, 200 with grpcStatus 14, and the code; counted under grpc_status 14', async () => {
  const lines: Record<string, unknown>[] = [];
  const registry = new Registry();
  const obs = observe({ accessLog: { stream: { write: (line: string) => lines.push(JSON.parse(line)) } }, metrics: { registry, relay: 'grpc' } });
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}`, transport: http2Transport(), stages: [obs.request, obs.attempt] });
  const front = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const client = new EchoClient(`127.0.0.1:${(front.address() as AddressInfo).port}`, grpc.credentials.createInsecure()) as Client;
  try {
    const result = await unary(client, 'unary', { text: 'x', n: 0 });
    assert.is(result.error?.code, grpc.status.UNAVAILABLE);
    assert.ok(await waitFor(() => lines.length === 1));
    assert.equal([lines[0]!.status, lines[0]!.grpcStatus, lines[0]!.code, lines[0]!.bytesOut], [200, 14, 'ERR_UPSTREAM_UNREACHABLE', 0]);
    const text = await registry.metrics();
    assert.is(value(text, 'relay_grpc_calls_total{relay="grpc",route="",grpc_status="14"}'), 1, text);
  } finally {
    client.close();
    await relay.shutdown({ timeout: 500 });
    await new Promise<void>((resolve) => front.close(() => resolve()));
  }
});

test('the relay’s read timeout on a gRPC call the service received: the line says what the client got, grpcStatus 4 (DEADLINE_EXCEEDED), not 14; counted under grpc_status 4', async () => {
  const s = await setup();
  const lines: Record<string, unknown>[] = [];
  const registry = new Registry();
  const obs = observe({ accessLog: { stream: { write: (line: string) => lines.push(JSON.parse(line)) } }, metrics: { registry, relay: 'grpc' } });
  const relay = createRelay({ targetBaseUrl: s.target, transport: http2Transport(), stages: [obs.request, obs.attempt], timeout: { read: 300 } });
  const front = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const client = new EchoClient(`127.0.0.1:${(front.address() as AddressInfo).port}`, grpc.credentials.createInsecure()) as Client;
  try {
    const result = await unary(client, 'slow', { text: 'read-timeout', n: 0 });
    assert.is(result.error?.code, grpc.status.DEADLINE_EXCEEDED, `${result.error?.code} ${result.error?.details}`);
    assert.ok(await waitFor(() => lines.length === 1));
    assert.equal([lines[0]!.status, lines[0]!.grpcStatus, lines[0]!.code], [200, 4, 'ERR_READ_TIMEOUT']);
    const text = await registry.metrics();
    assert.is(value(text, 'relay_grpc_calls_total{relay="grpc",route="",grpc_status="4"}'), 1, text);
  } finally {
    client.close();
    await relay.shutdown({ timeout: 500 });
    await new Promise<void>((resolve) => front.close(() => resolve()));
    await s.close();
  }
});

test('a stage’s own error answer to a gRPC call (a 429 with errorCode): the line says what the client got, 200 with grpcStatus 14, the code, no body bytes', async () => {
  const lines: Record<string, unknown>[] = [];
  const registry = new Registry();
  const obs = observe({ accessLog: { stream: { write: (line: string) => lines.push(JSON.parse(line)) } }, metrics: { registry, relay: 'grpc' } });
  const refuse: Stage = {
    name: 'refuse',
    wrap: () =>
      async function refuseStage() {
        return { ...textResponse(429, Buffer.from('429 Too Many Requests: later (ERR_RATE_LIMITED)\n'), { 'retry-after': '3' }), errorCode: 'ERR_RATE_LIMITED' };
      },
  };
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}`, transport: http2Transport(), stages: [obs.request, refuse, obs.attempt] });
  const front = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const client = new EchoClient(`127.0.0.1:${(front.address() as AddressInfo).port}`, grpc.credentials.createInsecure()) as Client;
  try {
    const result = await unary(client, 'unary', { text: 'x', n: 0 });
    assert.is(result.error?.code, grpc.status.UNAVAILABLE);
    assert.is(result.error?.details, '429 Too Many Requests: later (ERR_RATE_LIMITED)');
    assert.ok(await waitFor(() => lines.length === 1));
    assert.equal([lines[0]!.status, lines[0]!.grpcStatus, lines[0]!.code, lines[0]!.bytesOut], [200, 14, 'ERR_RATE_LIMITED', 0]);
    const text = await registry.metrics();
    assert.is(value(text, 'relay_grpc_calls_total{relay="grpc",route="",grpc_status="14"}'), 1, text);
  } finally {
    client.close();
    await relay.shutdown({ timeout: 500 });
    await new Promise<void>((resolve) => front.close(() => resolve()));
  }
});

test('gRPC client cancels a server-streaming call mid-stream: the line is written with ERR_CLIENT_ABORTED', async () => {
  const s = await setup();
  try {
    const call = s.client.serverStream!({ text: 'x'.repeat(1000), n: 100_000 }) as grpc.ClientReadableStream<Message>;
    call.on('error', () => {});
    await new Promise<void>((resolve) => call.once('data', () => resolve()));
    call.cancel();
    const logged = await waitFor(() => s.lines.length === 1, 4000);
    assert.equal({ logged, code: s.lines[0]?.code }, { logged: true, code: 'ERR_CLIENT_ABORTED' });
  } finally {
    await s.close();
  }
});

test('gRPC client cancels a unary call before the answer: the line is 499 ERR_CLIENT_ABORTED at once, the upstream call cancelled', async () => {
  const s = await setup();
  try {
    const call = s.client.slow!({ text: 'cancel-me', n: 0 }, () => {}) as grpc.ClientUnaryCall;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const cancelAt = performance.now();
    call.cancel();
    assert.ok(await waitFor(() => s.lines.length === 1, 5000));
    await waitFor(() => cancelled.includes('cancel-me'), 3000);
    const line = s.lines[0]!;
    assert.equal(
      { status: line.status, code: line.code, prompt: (line.duration as number) < 1500, upstreamCancelledWithin1s: (cancelledAt.get('cancel-me') ?? Infinity) - cancelAt < 1000 },
      { status: 499, code: 'ERR_CLIENT_ABORTED', prompt: true, upstreamCancelledWithin1s: true },
    );
  } finally {
    await s.close();
  }
});

test.run();
