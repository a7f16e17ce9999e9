import type { Server } from 'node:net';
import type { Relay } from '@relay/core';
import { routeUpgrades, type UpgradeRoutes } from '@relay/connect-adapter';

interface Table {
  relays: Record<string, Relay>;
  installed: UpgradeRoutes | null;
}

const tables = new WeakMap<Server, Table>();

/**
 * Adds one prefix → relay upgrade route to a server, keeping the routes other front doors
 * registered on it (`routeUpgrades` replaces a server's routes on each call). Returns the
 * function that removes it again.
 *
 * @example
 * const remove = addUpgradeRoute(fastify.server, '/chat', chatRelay);
 */
export function addUpgradeRoute(server: Server, prefix: string, relay: Relay): () => void {
  let table = tables.get(server);
  if (table === undefined) {
    table = { relays: {}, installed: null };
    tables.set(server, table);
  }
  const key = prefix === '' ? '/' : prefix;
  const existing = table.relays[key];
  if (existing !== undefined && existing !== relay) throw new TypeError(`another relay already serves WebSocket upgrades under "${key}" on this server`);
  table.relays[key] = relay;
  table.installed = routeUpgrades(server, table.relays);
  const owner = table;
  return function removeUpgradeRoute() {
    if (owner.relays[key] !== relay) return;
    delete owner.relays[key];
    if (Object.keys(owner.relays).length > 0) {
      owner.installed = routeUpgrades(server, owner.relays);
      return;
    }
    owner.installed?.detach();
    tables.delete(server);
  };
}
