import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { echoMethod, waitFor, type EchoMessage } from '@relay/testkit';
import { createRelay, http2Transport, type Relay } from '../src/index.js';

// Issue 15, gRPC: a real @grpc/grpc-js client and server through Relay (an HTTP/2 front,
// http2Transport upstream): the four call kinds, statuses in trailers, deadlines, cancellation,
// 4 MiB messages and 100 concurrent streams on one connection.

type Message = EchoMessage;
const service = {
  unary: echoMethod('/relay.test.Echo/Unary'),
  slow: echoMethod('/relay.test.Echo/Slow'),
  fail: echoMethod('/relay.test.Echo/Fail'),
  serverStream: echoMethod('/relay.test.Echo/ServerStream', { responseStream: true }),
  clientStream: echoMethod('/relay.test.Echo/ClientStream', { requestStream: true }),
  bidi: echoMethod('/relay.test.Echo/Bidi', { requestStream: true, responseStream: true }),
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');
const big = { 'grpc.max_receive_message_length': 8 * 1024 * 1024, 'grpc.max_send_message_length': 8 * 1024 * 1024 };

interface Setup {
  client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  relay: Relay;
  cancelled: string[];
  close(): Promise<void>;
}

async function setup(): Promise<Setup> {
  const cancelled: string[] = [];
  const server = new grpc.Server(big);
  server.addService(service, {
    unary: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => done(null, { text: call.request.text, n: call.request.n + 1 }),
    slow: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      const timer = setTimeout(() => done(null, call.request), 3000);
      call.on('cancelled', () => {
        clearTimeout(timer);
        cancelled.push(call.request.text);
      });
    },
    fail: (_call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => done({ code: grpc.status.NOT_FOUND, details: 'no such item' }),
    serverStream: (call: grpc.ServerWritableStream<Message, Message>) => {
      for (let n = 0; n < call.request.n; n++) call.write({ text: call.request.text, n });
      call.end();
    },
    clientStream: (call: grpc.ServerReadableStream<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      let sum = 0;
      call.on('data', (message: Message) => (sum += message.n));
      call.on('end', () => done(null, { text: 'sum', n: sum }));
    },
    bidi: (call: grpc.ServerDuplexStream<Message, Message>) => {
      call.on('data', (message: Message) => call.write({ text: message.text.toUpperCase(), n: message.n }));
      call.on('end', () => call.end());
    },
  });
  const upstreamPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${upstreamPort}`, transport: http2Transport(), timeout: { read: 10_000 } });
  const front = http2.createServer(relay.handle);
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const client = new EchoClient(`127.0.0.1:${(front.address() as AddressInfo).port}`, grpc.credentials.createInsecure(), big) as Setup['client'];
  return {
    client,
    relay,
    cancelled,
    async close() {
      client.close();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await relay.shutdown();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

function unary(client: Setup['client'], name: string, request: Message, options: grpc.CallOptions = {}): Promise<Message> {
  return new Promise((resolve, reject) => {
    client[name]!(request, new grpc.Metadata(), options, (error: grpc.ServiceError | null, response: Message) => (error ? reject(error) : resolve(response)));
  });
}

test('unary, server streaming, client streaming and bidirectional calls through the relay', async () => {
  const s = await setup();
  assert.equal(await unary(s.client, 'unary', { text: 'hi', n: 1 }), { text: 'hi', n: 2 });
  const streamed = await new Promise<Message[]>((resolve, reject) => {
    const got: Message[] = [];
    const call = s.client.serverStream!({ text: 's', n: 5 }) as grpc.ClientReadableStream<Message>;
    call.on('data', (message: Message) => got.push(message));
    call.on('end', () => resolve(got));
    call.on('error', reject);
  });
  assert.equal(streamed.map((m) => m.n), [0, 1, 2, 3, 4]);
  const sum = await new Promise<Message>((resolve, reject) => {
    const call = s.client.clientStream!((error: grpc.ServiceError | null, response: Message) => (error ? reject(error) : resolve(response))) as grpc.ClientWritableStream<Message>;
    for (let n = 1; n <= 10; n++) call.write({ text: 'n', n });
    call.end();
  });
  assert.equal(sum, { text: 'sum', n: 55 });
  const echoed = await new Promise<string[]>((resolve, reject) => {
    const got: string[] = [];
    const call = s.client.bidi!() as grpc.ClientDuplexStream<Message, Message>;
    call.on('data', (message: Message) => got.push(message.text));
    call.on('end', () => resolve(got));
    call.on('error', reject);
    for (const text of ['a', 'b', 'c']) call.write({ text, n: 0 });
    call.end();
  });
  assert.equal(echoed, ['A', 'B', 'C']);
  await s.close();
});

test('a status other than OK reaches the client with its message (a trailers-only response)', async () => {
  const s = await setup();
  try {
    await unary(s.client, 'fail', { text: 'x', n: 0 });
    assert.unreachable('the call should fail');
  } catch (error) {
    const failure = error as grpc.ServiceError;
    assert.is(failure.code, grpc.status.NOT_FOUND, failure.details);
    assert.is(failure.details, 'no such item');
  }
  await s.close();
});

test('a client deadline and a cancelled call end the upstream call', async () => {
  const s = await setup();
  try {
    await unary(s.client, 'slow', { text: 'deadline', n: 0 }, { deadline: Date.now() + 300 });
    assert.unreachable('the deadline should pass');
  } catch (error) {
    assert.is((error as grpc.ServiceError).code, grpc.status.DEADLINE_EXCEEDED);
  }
  assert.ok(await waitFor(() => s.cancelled.includes('deadline'), 3000), 'the upstream call was cancelled at the deadline');
  const call = s.client.slow!({ text: 'cancel', n: 0 }, () => {}) as grpc.ClientUnaryCall;
  await new Promise((resolve) => setTimeout(resolve, 200));
  call.cancel();
  assert.ok(await waitFor(() => s.cancelled.includes('cancel'), 3000), 'the upstream call was cancelled with the client’s');
  assert.ok(await waitFor(() => s.relay.inFlight === 0, 3000));
  await s.close();
});

test('4 MiB messages both ways, and 100 concurrent calls on one connection', async () => {
  const s = await setup();
  const text = 'x'.repeat(4 * 1024 * 1024);
  const answer = await unary(s.client, 'unary', { text, n: 7 });
  assert.is(answer.text.length, text.length);
  assert.is(answer.n, 8);
  const answers = await Promise.all(Array.from({ length: 100 }, (_, n) => unary(s.client, 'unary', { text: `c${n}`, n })));
  assert.equal(answers.map((a) => a.n), Array.from({ length: 100 }, (_, n) => n + 1));
  await s.close();
});

test.run();
