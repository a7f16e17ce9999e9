import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Server } from 'node:net';
import type { DispatchRoute } from '@relay/core';
import { routeUnder } from './mount.js';

/** What a server's `request` event gives: node:http, https, or node:http2 with its compatibility API. */
type ServerRequest = IncomingMessage | Http2ServerRequest;

/** The client's route of a request whose target was changed: its mount spelling and target, for `X-Forwarded-Prefix` and logs. */
const clientRoutes = new WeakMap<ServerRequest, DispatchRoute>();

/**
 * Makes a case-sensitive router (Fastify's, by default) find the routes under `prefix` for any
 * spelling of it, as the prefix is documented to match and as WebSocket upgrades do: a
 * `request` listener that runs before the router's rewrites `/API/users` to `/api/users`. The
 * app's hooks then see the request on the relay's routes like any other. Returns the function
 * that removes the listener.
 *
 * @example
 * const remove = matchPrefixAnyCase(fastify.server, '/api');
 */
export function matchPrefixAnyCase(server: Server, prefix: string): () => void {
  // No letters, nothing to respell (the root included).
  if (prefix.toLowerCase() === prefix.toUpperCase()) return () => {};
  const respell = (req: ServerRequest): void => {
    const url = req.url;
    if (url === undefined || url.startsWith(prefix)) return;
    const route = routeUnder(url, prefix);
    if (route === null) return;
    clientRoutes.set(req, route);
    // Origin-form too: an absolute-form target (`http://host/API/x`) is routed on its path.
    req.url = prefix + route.path;
  };
  server.prependListener('request', respell);
  return () => void server.removeListener('request', respell);
}

/**
 * A route from `routeUnder` with the client's spelling of the prefix put back, when
 * `matchPrefixAnyCase` changed it: the upstream's `X-Forwarded-Prefix` is the mount the client used.
 */
export function withClientSpelling(route: DispatchRoute, req: ServerRequest): DispatchRoute {
  const client = clientRoutes.get(req);
  if (client === undefined) return route;
  route.mountPath = client.mountPath;
  route.originalUrl = client.originalUrl;
  return route;
}
