// docs/grpc.md: gRPC through Relay. grpc.test.ts runs it with a real @grpc/grpc-js client and server.
import http2 from 'node:http2';
import { createRelay, http2Transport } from '@relay/core';

export function grpcGateway(grpcService = 'http://orders:50051', port = 8443) {
  const relay = createRelay({
    targetBaseUrl: grpcService,          // h2c: HTTP/2 with prior knowledge (https: uses ALPN h2)
    transport: http2Transport(),         // gRPC needs HTTP/2 to the service too
    timeout: { read: 60_000 },           // longest quiet time of a stream; client deadlines still apply
  });
  // HTTP/2 toward clients: plain here (h2c); in production http2.createSecureServer({ key, cert }, relay.handle).
  const server = http2.createServer(relay.handle).listen(port);
  return { relay, server };
}
