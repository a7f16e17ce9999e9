// Review s41: gRPC through the relay with a real @grpc/grpc-js client and server.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { echoMethod, waitFor, type EchoMessage } from '@relay/testkit';
import { createRelay, http2Transport, type Http2TransportOptions, type Relay, type RelayOptions } from '../src/index.js';

const test = suite('review s41 gRPC');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

type Message = EchoMessage;
const service = {
  unary: echoMethod('/relay.s41.Echo/Unary'),
  slow: echoMethod('/relay.s41.Echo/Slow'),
} satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');
type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

interface Probe {
  seen: string[];
  cancelled: string[];
  active: number;
  maxActive: number;
}
// A direct grpc-js client to the same service sees no failure (2030 calls in 2 s): grpc-js retries
// streams the server refused (REFUSED_STREAM, above the GOAWAY's last stream id) transparently.

async function startService(probe: Probe, options: grpc.ServerOptions = {}): Promise<number> {
  const server = new grpc.Server(options);
  server.addService(service, {
    unary: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      probe.seen.push(call.request.text);
      done(null, call.request);
    },
    slow: (call: grpc.ServerUnaryCall<Message, Message>, done: grpc.sendUnaryData<Message>) => {
      probe.seen.push(call.request.text);
      probe.active++;
      probe.maxActive = Math.max(probe.maxActive, probe.active);
      const timer = setTimeout(() => {
        probe.active--;
        done(null, call.request);
      }, call.request.n);
      call.on('cancelled', () => {
        clearTimeout(timer);
        probe.active--;
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

async function front(target: string, options: Partial<RelayOptions> = {}, transport: Http2TransportOptions = {}): Promise<{ client: Client; relay: Relay; port: number }> {
  const relay = createRelay({ targetBaseUrl: target, transport: http2Transport(transport), timeout: { read: 30_000 }, ...options });
  const server = http2.createServer(relay.handle);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as Client;
  closers.push(async () => {
    client.close();
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await relay.shutdown({ timeout: 500 });
  });
  return { client, relay, port };
}

function unary(client: Client, name: string, request: Message, options: grpc.CallOptions = {}) {
  return new Promise<{ error: grpc.ServiceError | null; response?: Message }>((resolve) => {
    client[name]!(request, new grpc.Metadata(), options, (error: grpc.ServiceError | null, response: Message) => resolve({ error, response }));
  });
}

test('the relay’s own read timeout firing on a call the service already received answers DEADLINE_EXCEEDED (as Envoy and linkerd now do), never UNAVAILABLE, which tells clients to retry a call that may have run', async () => {
  const probe: Probe = { seen: [], cancelled: [], active: 0, maxActive: 0 };
  const { client } = await front(`http://127.0.0.1:${await startService(probe)}`, { timeout: { read: 300 } });
  const result = await unary(client, 'slow', { text: 'late', n: 5000 });
  assert.equal(probe.seen, ['late'], 'the service received the call');
  assert.ok(await waitFor(() => probe.cancelled.length === 1, 3000), 'the service saw the cancel');
  assert.is(result.error?.code, grpc.status.DEADLINE_EXCEEDED, `${result.error?.code} ${result.error?.details}`);
});

test('a service with grpc.max_connection_age_ms (GOAWAY, then close, as grpc-go and grpc-js servers rotate connections): every call over 2 s through the relay all succeed', async () => {
  const probe: Probe = { seen: [], cancelled: [], active: 0, maxActive: 0 };
  const port = await startService(probe, { 'grpc.max_connection_age_ms': 200, 'grpc.max_connection_age_grace_ms': 2000 });
  const { client } = await front(`http://127.0.0.1:${port}`);
  const failures: string[] = [];
  let done = 0;
  const until = Date.now() + 2000;
  await Promise.all(Array.from({ length: 10 }, async (_, lane) => {
    while (Date.now() < until) {
      const slow = done % 7 === 0;
      const r = await unary(client, slow ? 'slow' : 'unary', { text: `c${lane}`, n: slow ? 150 : 0 });
      done++;
      if (r.error !== null) failures.push(`${r.error.code} ${r.error.details}`);
    }
  }));
  assert.ok(done > 50, `only ${done} calls`);
  assert.equal(failures, [], `${failures.length} of ${done} calls failed: ${failures.slice(0, 3).join(' | ')}`);
});

test.run();
