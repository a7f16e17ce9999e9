// @relay/frameworks/fastify: a relay as a Fastify 5 plugin.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { assertKnownKeys, type Relay } from '@relay/core';
import { setAppHeader } from './app-headers.js';
import { assertRelay } from './assert-relay.js';
import { normalizePrefix, routeUnder } from './mount.js';
import { matchPrefixAnyCase, withClientSpelling } from './prefix-case.js';
import { addUpgradeRoute } from './upgrade-table.js';

/** Options of `relayPlugin`, given to `fastify.register`. */
export interface RelayPluginOptions {
  /** The relay to serve (from `createRelay`; without `mountPath`: Fastify strips the prefix). */
  relay: Relay;
  /** Where the relay answers, e.g. `'/api'`: HTTP routes `/api` and `/api/*`, and WebSocket upgrades under it. Default the root. */
  prefix?: string;
  /** Fastify's own register option: the log level of the plugin's routes. */
  logLevel?: string;
}

const pluginKeys = ['relay', 'prefix', 'logLevel'] as const;

/**
 * Serves a relay under a prefix of a Fastify 5 app: every method on `prefix` and `prefix/*`,
 * and the server's WebSocket upgrades under `prefix`, the prefix in any case (`/API/x` is
 * respelled `/api/x` before Fastify routes it; `X-Forwarded-Prefix` keeps `/API`). Every hook the
 * app added runs first (`onRequest` to `preHandler`: auth guards the relay). Request bodies are not
 * parsed: one content-type parser for every type leaves the stream to the relay, so bodies stream
 * both ways and Fastify's `bodyLimit` does not apply (use `bodyLimit()` from `@relay/body`); a
 * Content-Type Fastify cannot parse at all (`text`) gets Fastify's 415. Headers the hooks set with
 * `reply.header()` go out with the upstream's answer (the upstream's value wins a clash, its
 * `Set-Cookie` lines go beside the app's). The reply is hijacked: the relay writes
 * it, so Fastify's `onSend`/`onResponse` hooks do not run for these routes. The relay starts
 * with the app (`onReady`) and drains on `app.close()` (`preClose`).
 *
 * @example
 * const app = fastify();
 * await app.register(relayPlugin, { relay: createRelay({ targetBaseUrl: 'http://api:8000', websocket: websocket() }), prefix: '/api' });
 * await app.listen({ port: 8080 });
 * // GET /api/users → GET http://api:8000/users, X-Forwarded-Prefix: /api; ws://host/api/live → ws://api:8000/live
 */
export function relayPlugin(fastify: FastifyInstance, options: RelayPluginOptions, done: (error?: Error) => void): void {
  try {
    mountRelay(fastify, options);
  } catch (error) {
    // Avvio reports an error given to `done` from `ready()`/`listen()`; a throw would be uncaught.
    done(error as Error);
    return;
  }
  done();
}

function mountRelay(fastify: FastifyInstance, options: RelayPluginOptions): void {
  if (options === null || typeof options !== 'object') throw new TypeError('relayPlugin options must be an object { relay, prefix }');
  assertKnownKeys(options, pluginKeys, 'relayPlugin');
  assertRelay(options.relay, 'relayPlugin: relay');
  const relay = options.relay;
  // fastify.prefix is the whole prefix, parents' included, as Fastify normalised it.
  assertLiteralPrefix(fastify.prefix);
  const prefix = normalizePrefix(fastify.prefix, 'relayPlugin: prefix');

  // One parser for every type that hands Fastify nothing: the body stays in the stream for the relay.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', function leaveBodyToRelay(_request: FastifyRequest, _payload: unknown, parsed: (error: null) => void) {
    parsed(null);
  });

  // The handler, not an early hook: every hook the app added (onRequest, preParsing,
  // preValidation, preHandler: auth such as @fastify/auth's preHandler) runs before a request is
  // relayed. The price: a Content-Type Fastify cannot parse at all (`text`, an empty value) gets
  // Fastify's 415 before the handler, as with @fastify/http-proxy.
  function relayRoute(request: FastifyRequest, reply: FastifyReply): void {
    const route = routeUnder(request.raw.url ?? '/', prefix);
    // Fastify may match what the raw target does not show (ignoreDuplicateSlashes, a rewriteUrl).
    if (route === null) return reply.callNotFound();
    reply.hijack();
    // What the app's hooks set with reply.header() (@fastify/cors) lives on the reply, not on reply.raw.
    const headers = reply.getHeaders();
    for (const name in headers) setAppHeader(reply.raw, name, headers[name]);
    // The hooks' edits: request.headers is request.raw.headers, merged with what `request.headers = …` set.
    route.headers = request.headers;
    relay.dispatch(request.raw, reply.raw, withClientSpelling(route, request.raw));
  }
  fastify.all('/', relayRoute);
  fastify.all('/*', relayRoute);
  // Fastify's router is case-sensitive; the prefix is documented to match in any case.
  const removeRespelling = matchPrefixAnyCase(fastify.server, prefix);

  const removeUpgrades = addUpgradeRoute(fastify.server, prefix, relay);
  fastify.addHook('onReady', () => relay.startup());
  fastify.addHook('preClose', async () => {
    removeUpgrades();
    removeRespelling();
    await relay.shutdown();
  });
}

/**
 * Fastify reads `:` (a parameter, `::` an escaped colon) and `*` in a route path: under
 * `/tenants/:id` its router finds the plugin's routes for `/tenants/7/x`, but the relay strips the
 * prefix it was given, compared with the request's target, and the upgrade routes match it as
 * text: every request would be a 404. Refused at register, naming the way out.
 */
function assertLiteralPrefix(prefix: string): void {
  const special = /[:*]/.exec(prefix);
  if (special === null) return;
  throw new TypeError(
    `relayPlugin: prefix must be a literal path, got "${prefix}": Fastify reads "${special[0]}" as a route parameter, which the relay cannot strip; ` +
      'register it under a literal prefix (`/tenants`: the upstream gets `/7/orders`) or one plugin per prefix',
  );
}
