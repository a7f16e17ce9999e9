// The proxies of the HTTP/2 workloads: an HTTP/2 front (h2c) on each side of the comparison, and
// gRPC with HTTP/2 both ways. @fastify/http-proxy is the one Node peer with an HTTP/2 option.
import { createServer as createH2cServer } from 'node:http2';
import type { Server } from 'node:http';
import { UPSTREAM_IDLE_MS, UPSTREAM_SOCKETS } from './settings.js';
import type { Started } from './proxies.js';

/** Relay as the listener of `http2.createServer()`: HTTP/2 clients, the default transport to the HTTP/1.1 upstream. */
export async function relayH2Front(target: URL): Promise<Started> {
  const { createRelay, httpTransport } = await import('@relay/core');
  const relay = createRelay({
    targetBaseUrl: target.origin,
    transport: httpTransport({ maxSockets: UPSTREAM_SOCKETS, maxFreeSockets: UPSTREAM_SOCKETS, idleTimeout: UPSTREAM_IDLE_MS }),
  });
  await relay.startup();
  return { server: createH2cServer(relay.handle) as unknown as Server };
}

/** Relay for gRPC as docs/grpc.md sets it up: an h2c front and `http2Transport` to the gRPC server. */
export async function relayGrpc(target: URL): Promise<Started> {
  const { createRelay, http2Transport } = await import('@relay/core');
  const relay = createRelay({ targetBaseUrl: target.origin, transport: http2Transport() });
  await relay.startup();
  return { server: createH2cServer(relay.handle) as unknown as Server };
}

/**
 * @fastify/http-proxy on fastify 5 with `http2: true` (an h2c server): to the HTTP/1.1 upstream
 * with reply-from's undici pool as in the `fastify-http-proxy` row, or, for gRPC, with its own
 * `http2` option upstream (reply-from's HTTP/2 client), as its README routes gRPC.
 */
export async function fastifyHttpProxyH2(target: URL, grpc: boolean): Promise<Started> {
  const { default: fastify } = await import('fastify');
  const { default: proxy } = await import('@fastify/http-proxy');
  const app = fastify({ logger: false, http2: true });
  await app.register(proxy, grpc ? { upstream: target.origin, http2: true } : { upstream: target.origin, undici: { connections: UPSTREAM_SOCKETS, pipelining: 1, keepAliveTimeout: 60_000 } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { server: app.server as unknown as Server, listening: true };
}
