import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grpcGateway } from './grpc.js';

const codec = {
  requestSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  requestDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as { id: number },
  responseSerialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  responseDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString()) as { id: number; status: string },
};
const service = {
  get: { path: '/shop.Orders/Get', requestStream: false, responseStream: false, ...codec },
} satisfies grpc.ServiceDefinition;

test('docs/grpc.md: a gRPC call through grpcGateway reaches the service, and its error status comes back', async () => {
  const server = new grpc.Server();
  server.addService(service, {
    get: (call: grpc.ServerUnaryCall<{ id: number }, unknown>, done: grpc.sendUnaryData<unknown>) =>
      call.request.id === 7 ? done(null, { id: 7, status: 'shipped' }) : done({ code: grpc.status.NOT_FOUND, details: 'no such order' }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const gateway = grpcGateway(`http://127.0.0.1:${port}`, 0);
  await new Promise((resolve) => gateway.server.once('listening', resolve));
  const Client = grpc.makeGenericClientConstructor(service, 'Orders');
  const client = new Client(`127.0.0.1:${(gateway.server.address() as AddressInfo).port}`, grpc.credentials.createInsecure());
  const call = (id: number) =>
    new Promise<unknown>((resolve) => (client as unknown as Record<string, Function>).get!({ id }, (error: grpc.ServiceError | null, answer: unknown) => resolve(error === null ? answer : [error.code, error.details])));
  assert.equal(await call(7), { id: 7, status: 'shipped' });
  assert.equal(await call(8), [grpc.status.NOT_FOUND, 'no such order']);
  client.close();
  await new Promise((resolve) => gateway.server.close(resolve));
  await gateway.relay.shutdown();
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
});

test.run();
