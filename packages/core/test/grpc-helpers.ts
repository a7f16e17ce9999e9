// What the gRPC tests share: a grpc-js client to an HTTP/2 front of a relay, and a unary call as a promise.
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type { EchoMessage } from '@relay/testkit';
import { createRelay, http2Transport, type RelayOptions } from '../src/index.js';
import type { Closers } from './http2-helpers.js';

/** A generic grpc-js client: its methods are named by the service definition it was made from. */
export type GrpcClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** Where the front's relay goes and what the client is made with; everything is closed through `closers`. */
export interface GrpcFrontOptions {
  readonly target: string;
  readonly client: grpc.ServiceClientConstructor;
  readonly closers: Closers;
  readonly relay?: Partial<RelayOptions>;
}

/** A grpc-js client to an HTTP/2 front of a relay to `target` over http2Transport. */
export async function grpcFront(options: GrpcFrontOptions): Promise<GrpcClient> {
  const relay = createRelay({ targetBaseUrl: options.target, transport: http2Transport(), ...options.relay });
  const server = http2.createServer(relay.handle);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => sessions.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new options.client(`127.0.0.1:${(server.address() as AddressInfo).port}`, grpc.credentials.createInsecure()) as GrpcClient;
  options.closers.push(async () => {
    client.close();
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await relay.shutdown({ timeout: 500 });
  });
  return client;
}

/** One unary call of method `name`: its error, or its response. */
export function unary(client: GrpcClient, name: string, request: EchoMessage) {
  return new Promise<{ error: grpc.ServiceError | null; response?: EchoMessage }>((resolve) => {
    client[name]!(request, new grpc.Metadata(), {}, (error: grpc.ServiceError | null, response: EchoMessage) => resolve({ error, response }));
  });
}
