import type { ServerOptions } from 'node:http';

/**
 * Recommended node:http server options for a gateway in front of relays, against slow clients
 * (slowloris): the request head must arrive within 10 s (Node's default is 60 s), the whole
 * request, body included, within 5 minutes (Node's default; raise it for long uploads), idle
 * keep-alive connections close after 5 s, and these limits are checked every second instead of
 * every 30 s. Request heads over 16 KiB (Node's `maxHeaderSize`) get 431.
 *
 * @example
 * http.createServer({ ...gatewayServerOptions }, relay.handle).listen(8080);
 */
export const gatewayServerOptions: Readonly<ServerOptions> = Object.freeze({
  headersTimeout: 10_000,
  requestTimeout: 300_000,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 1_000,
});
