import type { IncomingMessage } from 'node:http';
import { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { RelayError, type Relay } from '@relay/core';
import { isWebSocketUpgrade, normalizePathOption, refuseUpgrade, serveAsPlainRequest } from '@relay/core/transport';
import { matchMount, pathStart, queryStart } from './mount.js';

/** The routes `routeUpgrades` installed on one server. */
export interface UpgradeRoutes {
  /** The mount paths served, longest first (`''` is the root). */
  readonly mountPaths: readonly string[];
  /** Removes these routes, and the server's `upgrade` listener with them; idempotent. */
  detach(): void;
}

interface Route {
  /** Lowercase, no trailing slash, `''` for the root. */
  readonly mount: string;
  readonly relay: Relay;
}

/** The one `upgrade` listener a server gets, whatever the number of calls. */
class UpgradeRouter {
  routes: readonly Route[] = [];
  readonly listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

  constructor(readonly server: NetServer) {
    const router = this;
    this.listener = function routeUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      router.route(req, socket, head);
    };
  }

  route(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // `Upgrade: h2c` (curl --http2, Java's HttpClient): the app's routes and the relays serve it as the plain request it also is.
    if (!isWebSocketUpgrade(req) && serveAsPlainRequest(req, socket, head)) return;
    const url = req.url ?? '/';
    const start = pathStart(url);
    const end = queryStart(url, start);
    for (const { mount, relay } of this.routes) {
      const stop = matchMount(url, start, end, mount);
      if (stop === -1) continue;
      relay.dispatchUpgrade(req, socket, head, { path: url.slice(stop), mountPath: url.slice(start, stop), originalUrl: url });
      return;
    }
    // Another listener (a WebSocket server of the app's own) may want it; else nobody will
    // answer, and an unanswered socket hangs.
    if (this.server.listenerCount('upgrade') > 1) return;
    refuseUpgrade(socket, new RelayError('ERR_NOT_MOUNTED', `no relay is mounted at ${url.slice(start, end).slice(0, 128)}`), null);
  }
}

const routers = new WeakMap<NetServer, UpgradeRouter>();

/**
 * Routes a server's WebSocket upgrades to relays by mount path: `routes` maps each mount path
 * to its relay. An upgrade under a mount (at a segment boundary, case-insensitive like Express
 * and Connect: `/chat` serves `/chat`, `/chat/room` and `/chat?x`, not `/chatty`; the longest
 * mount wins) goes to `relay.dispatchUpgrade` with the path after the mount. An upgrade under no
 * mount is left to the server's other `upgrade` listeners when it has any, and answered
 * `404` with `Connection: close` when it has none.
 *
 * A server gets one `upgrade` listener however often this is called: calling it again for the
 * same server replaces its routes.
 *
 * @example
 * const server = app.listen(8080);
 * routeUpgrades(server, { '/chat': chatRelay, '/auth': authRelay });
 * // ws://host/chat/room → chatRelay, as /room upstream
 */
export function routeUpgrades(server: NetServer, routes: Readonly<Record<string, Relay>>): UpgradeRoutes {
  if (!(server instanceof NetServer)) {
    throw new TypeError('routeUpgrades(server) needs the http.Server or https.Server that app.listen() or http.createServer() returned');
  }
  if (routes === null || typeof routes !== 'object') throw new TypeError('routes must be an object mapping mount paths to relays');
  const table: Route[] = [];
  for (const [path, relay] of Object.entries(routes)) {
    const option = `routes["${path}"]`;
    if (relay === null || typeof relay !== 'object' || typeof relay.dispatchUpgrade !== 'function') {
      throw new TypeError(`${option} must be a relay made by createRelay() from @relay/core`);
    }
    const mount = normalizePathOption(path, option).toLowerCase();
    if (table.some((route) => route.mount === mount)) throw new TypeError(`${option} repeats the mount path "${mount || '/'}"`);
    table.push({ mount, relay });
  }
  table.sort((a, b) => b.mount.length - a.mount.length);
  let router = routers.get(server);
  if (router === undefined) {
    router = new UpgradeRouter(server);
    routers.set(server, router);
    server.on('upgrade', router.listener);
  }
  router.routes = table;
  const installed = router;
  return {
    mountPaths: table.map((route) => route.mount),
    detach() {
      if (installed.routes !== table || routers.get(server) !== installed) return;
      server.removeListener('upgrade', installed.listener);
      routers.delete(server);
    },
  };
}
