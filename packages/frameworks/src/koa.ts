// @relay/frameworks/koa: a relay as Koa 2/3 middleware.
import type { Context, Next } from 'koa';
import { assertKnownKeys, type Relay } from '@relay/core';
import { assertRelay } from './assert-relay.js';
import { refuseConsumedBody } from './consumed.js';
import { responseClosed } from './response-closed.js';
import { normalizePrefix, routeUnder } from './mount.js';

/** Options of `relayMiddleware`. */
export interface RelayMiddlewareOptions {
  /** Where the relay answers, e.g. `'/api'` (`/api`, `/api/…`, `/api?…`; not `/apix`). Default the root: every request. */
  prefix?: string;
}

/** A Koa middleware. */
export type KoaMiddleware = (ctx: Context, next: Next) => Promise<void>;

const middlewareKeys = ['prefix'] as const;

/**
 * Serves a relay from a Koa 2 or 3 app: requests under `prefix` are handed to the relay with
 * `ctx.respond = false` (the relay writes and streams the response; Koa does not touch it),
 * the others go on to `next()`. The middleware resolves when the response has closed, so
 * middleware in front of it (loggers, timers) see the whole exchange. Mount it before any body
 * parser: a body already read gets 500 (`ERR_BODY_CONSUMED`) and a log line. WebSocket
 * upgrades do not pass through Koa: give the server's `upgrade` event to the relay with
 * `routeUpgrades(server, { '/api': relay })` from `@relay/connect-adapter`.
 *
 * @example
 * const app = new Koa();
 * app.use(relayMiddleware(createRelay({ targetBaseUrl: 'http://api:8000' }), { prefix: '/api' }));
 * // GET /api/users → GET http://api:8000/users, X-Forwarded-Prefix: /api
 */
export function relayMiddleware(relay: Relay, options: RelayMiddlewareOptions = {}): KoaMiddleware {
  assertRelay(relay, 'relayMiddleware(relay)');
  if (options === null || typeof options !== 'object') throw new TypeError('relayMiddleware options must be an object { prefix }');
  assertKnownKeys(options, middlewareKeys, 'relayMiddleware');
  const prefix = normalizePrefix(options.prefix, 'relayMiddleware: prefix');

  return async function relayKoaMiddleware(ctx: Context, next: Next): Promise<void> {
    const route = routeUnder(ctx.url, prefix);
    if (route === null) return next();
    ctx.respond = false;
    route.originalUrl = ctx.originalUrl;
    // ctx.request.headers is ctx.req.headers: what middleware in front set or deleted there goes upstream.
    route.headers = ctx.req.headers;
    const closed = responseClosed(ctx.res);
    if (!refuseConsumedBody(relay, ctx.req, ctx.res)) relay.dispatch(ctx.req, ctx.res, route);
    await closed;
  };
}
