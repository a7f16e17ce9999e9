// The gRPC pieces of the harness: one unary method whose messages are raw bytes (no protobuf
// compiler needed; the framing, HTTP/2 and trailers are what a proxy sees), served by a real
// @grpc/grpc-js server in the upstream process and called by a real @grpc/grpc-js client.
import type { Client, Server, ServiceDefinition } from '@grpc/grpc-js';
import { SMALL_BODY } from './settings.js';

/** The method every call goes to. */
export const GRPC_METHOD = '/bench.Echo/Unary';
/** The request message: 50 bytes, echoed back. */
export const GRPC_MESSAGE = Buffer.from(SMALL_BODY);

const identity = (value: Buffer): Buffer => value;

const echoService: ServiceDefinition = {
  Unary: {
    path: GRPC_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** A grpc-js server echoing the unary message, on 127.0.0.1; resolves with its port. */
export async function startGrpcUpstream(): Promise<{ server: Server; port: number }> {
  const grpc = await import('@grpc/grpc-js');
  const server = new grpc.Server();
  server.addService(echoService, {
    Unary: (call: { request: Buffer }, callback: (error: null, value: Buffer) => void) => callback(null, call.request),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))),
  );
  return { server, port };
}

/** A grpc-js client (one channel: one HTTP/2 connection) to `port`. */
export async function grpcClient(port: number): Promise<Client> {
  const grpc = await import('@grpc/grpc-js');
  return new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** One unary call; resolves with whether the echo came back whole. */
export function grpcCall(client: Client): Promise<boolean> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(GRPC_METHOD, identity, identity, GRPC_MESSAGE, (error, value) => resolve(error === null && value !== undefined && GRPC_MESSAGE.equals(value)));
  });
}
