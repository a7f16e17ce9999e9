// rateLimit() in front of a real gRPC service, called by a real @grpc/grpc-js client over HTTP/2: the
// refusal reaches the client as a gRPC status (core sends a stage's error answer trailers-only).
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, http2Transport } from '@relay/core';
import { echoMethod, listenHttp2, type EchoMessage } from '@relay/testkit';
import { rateLimit } from '../src/index.js';

const service = { unary: echoMethod('/relay.limits.Echo/Unary') } satisfies grpc.ServiceDefinition;
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');
type Client = grpc.Client & { unary(request: EchoMessage, callback: (error: grpc.ServiceError | null, response?: EchoMessage) => void): grpc.ClientUnaryCall };

async function startService(): Promise<{ port: number; close(): void }> {
  const server = new grpc.Server();
  server.addService(service, { unary: (call: grpc.ServerUnaryCall<EchoMessage, EchoMessage>, done: grpc.sendUnaryData<EchoMessage>) => done(null, call.request) });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { port, close: () => server.forceShutdown() };
}

function unary(client: Client, request: EchoMessage): Promise<{ error: grpc.ServiceError | null; response?: EchoMessage }> {
  return new Promise((resolve) => client.unary(request, (error, response) => resolve({ error, response })));
}

test('rateLimit over a gRPC call: the call past the limit is UNAVAILABLE with the limit’s message and Retry-After, not an HTTP 429 to guess from', async () => {
  const service = await startService();
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${service.port}`, transport: http2Transport(), stages: [rateLimit({ points: 1, duration: 60_000 })] });
  const front = await listenHttp2(http2.createServer(relay.handle));
  const client = new EchoClient(front.url.replace('http://', ''), grpc.credentials.createInsecure()) as unknown as Client;
  try {
    const first = await unary(client, { text: 'one', n: 1 });
    assert.is(first.error, null);
    assert.equal(first.response, { text: 'one', n: 1 });
    const refused = await unary(client, { text: 'two', n: 2 });
    assert.is(refused.error?.code, grpc.status.UNAVAILABLE, `${refused.error?.code} ${refused.error?.details}`);
    assert.is(refused.error?.details, '429 Too Many Requests: the rate limit is exceeded, retry later (ERR_RATE_LIMITED)');
    assert.equal(refused.error?.metadata.get('retry-after'), ['60']);
  } finally {
    client.close();
    await front.close();
    await relay.shutdown({ timeout: 500 });
    service.close();
  }
});

test.run();
