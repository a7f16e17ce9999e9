// @relay/frameworks/hono: a relay as a Hono handler on @hono/node-server.
import type { ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';
import { assertKnownKeys, type Relay } from '@relay/core';
import { setAppHeader } from './app-headers.js';
import { assertRelay } from './assert-relay.js';
import { responseClosed } from './response-closed.js';
import { normalizePrefix, routeUnder } from './mount.js';

/** Options of `relayHandler`. */
export interface RelayHandlerOptions {
  /** The path the handler's routes are under, e.g. `'/api'` for `app.all('/api/*', …)`: stripped before forwarding. Default the root. */
  prefix?: string;
}

/** The environment @hono/node-server gives a Hono app: the Node request and response. */
export type NodeEnv = { Bindings: HttpBindings };

/** A Hono handler for an app served by @hono/node-server. */
export type NodeHandler = (c: Context<NodeEnv>) => Promise<Response>;

const handlerKeys = ['prefix'] as const;

/**
 * Serves a relay from a Hono app running on `@hono/node-server`: the handler gives the Node
 * request and response (`c.env.incoming`, `c.env.outgoing`) to the relay, which streams both
 * bodies (Hono never reads the request body), and returns `RESPONSE_ALREADY_SENT` once the
 * response has closed so @hono/node-server writes nothing. Headers middleware set before it
 * (`cors()`, `requestId()`) go out with the upstream's answer (the upstream's value wins a
 * clash). Register it for the bare prefix and
 * below it; a request whose target is not under `prefix` gets Hono's 404. Hono's router picks
 * the requests it sees, case-sensitively (`prefix` itself matches in any case). WebSocket upgrades
 * do not pass through Hono: give the node server's `upgrade` event to the relay with
 * `routeUpgrades(server, { '/api': relay })` from `@relay/connect-adapter` (when node-server's
 * own WebSocket support runs the app for one, the handler answers 404 and does not throw).
 *
 * @example
 * const app = new Hono<NodeEnv>();
 * app.all('/api/*', relayHandler(createRelay({ targetBaseUrl: 'http://api:8000' }), { prefix: '/api' }));
 * serve({ fetch: app.fetch, port: 8080 });
 */
export function relayHandler(relay: Relay, options: RelayHandlerOptions = {}): NodeHandler {
  assertRelay(relay, 'relayHandler(relay)');
  if (options === null || typeof options !== 'object') throw new TypeError('relayHandler options must be an object { prefix }');
  assertKnownKeys(options, handlerKeys, 'relayHandler');
  const prefix = normalizePrefix(options.prefix, 'relayHandler: prefix');

  return async function relayHonoHandler(c: Context<NodeEnv>): Promise<Response> {
    const env = c.env as Partial<HttpBindings> | undefined;
    if (env?.incoming !== undefined && env.outgoing === undefined && env.incoming.headers.upgrade !== undefined) {
      // @hono/node-server's own WebSocket support runs the app for every upgrade, without a
      // response. This one is `routeUpgrades`' to relay; node-server writes the answer only when
      // it is the server's one upgrade listener, when nothing relays upgrades under the prefix.
      return c.body(null, 404);
    }
    if (env?.incoming === undefined || env.outgoing === undefined) {
      throw new TypeError('relayHandler needs @hono/node-server: c.env.incoming and c.env.outgoing are missing');
    }
    const route = routeUnder(env.incoming.url ?? '/', prefix);
    if (route === null) return c.notFound();
    copyMiddlewareHeaders(c.res.headers, env.outgoing);
    route.headers = env.incoming.headers;
    const closed = responseClosed(env.outgoing);
    relay.dispatch(env.incoming, env.outgoing, route);
    await closed;
    ignoreLateWrites(env.outgoing);
    return RESPONSE_ALREADY_SENT;
  };
}

/**
 * Headers that middleware before the handler set (`cors()`, `requestId()`) wait on `c.res`, the
 * placeholder Hono merges into the handler's response; the relay writes `outgoing` itself, so
 * they go there. Set-Cookie line by line: `Headers` would join them into one unusable value.
 */
function copyMiddlewareHeaders(headers: Headers, outgoing: ServerResponse): void {
  for (const [name, value] of headers) {
    if (name !== 'set-cookie') setAppHeader(outgoing, name, value);
  }
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) setAppHeader(outgoing, 'set-cookie', cookies);
}

/**
 * `RESPONSE_ALREADY_SENT` is a marker header that @hono/node-server reads only on the response
 * object it was made as. Hono re-wraps the handler's response whenever `c.res` already exists
 * (any middleware before the handler: `cors()`, `await next()` in a logger, and this handler's
 * own read of `c.res`), and answers HEAD by wrapping the GET route's response in a new bodiless
 * one; node-server's wrapper then goes through its cached-response path, which never checks the
 * marker, and writes the head again: Node throws ERR_HTTP_HEADERS_SENT, the server logs it and
 * destroys the keep-alive connection. No response we return survives that, so the late writes
 * are dropped instead: the relay has answered and the response has closed, and these are own
 * properties of this one response, never of `ServerResponse.prototype`.
 */
function ignoreLateWrites(outgoing: ServerResponse): void {
  outgoing.writeHead = returnResponse as ServerResponse['writeHead'];
  outgoing.end = returnResponse as ServerResponse['end'];
  outgoing.write = acceptWrite;
}

function returnResponse(this: ServerResponse): ServerResponse {
  return this;
}

/** `true`: a body node-server would stream after the answer is dropped without waiting for a drain that never comes. */
function acceptWrite(): boolean {
  return true;
}
