import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { gatewayServerOptions } from '@relay/core';
import { ConfigError, issueAt } from './config-error.js';
import type { Gateway } from './gateway.js';
import type { LoadedConfig } from './load-config.js';

/** A listener's TLS certificate and key, read from the files the config names. */
export interface ListenerPlan {
  readonly name: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly tls: { cert: Buffer; key: Buffer } | null;
}

/**
 * Reads what the listeners need (certificate and key files, relative to the config file), so a
 * missing or unusable file is a config error, naming its line, before anything listens. `relay
 * check` and reloads run this too.
 *
 * @example
 * const plans = planListeners(loaded);
 */
export function planListeners(loaded: LoadedConfig): ListenerPlan[] {
  return loaded.config.listen.map((listener, index) => {
    const { name, host, port, tls } = listener;
    if (tls === undefined) return { name, host, port, tls: null };
    const at = ['listen', index, 'tls'];
    const pair = { cert: readPem(loaded, [...at, 'cert'], tls.cert), key: readPem(loaded, [...at, 'key'], tls.key) };
    try {
      // A PEM that does not parse, or a key of another certificate, is refused here: by `relay check`,
      // before anything listens, and by a reload before any listener takes it.
      createSecureContext(pair);
    } catch (error) {
      throw new ConfigError(loaded.shown, [issueAt(at, `cannot use this certificate and key: ${(error as Error).message}`, loaded.lineOf)]);
    }
    return { name, host, port, tls: pair };
  });
}

function readPem(loaded: LoadedConfig, at: ReadonlyArray<string | number>, file: string): Buffer {
  try {
    return readFileSync(resolve(loaded.dir, file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(loaded.shown, [issueAt(at, code === 'ENOENT' ? `no such file: ${file}` : `cannot read it (${code})`, loaded.lineOf)]);
  }
}

/**
 * Starts one node:http (or https, with TLS) server per listener, every one serving the gateway's
 * routes and WebSocket upgrades, with the slow-client limits of `gatewayServerOptions`.
 *
 * @example
 * const servers = await listen(planListeners(loaded), gateway);
 */
export async function listen(plans: ListenerPlan[], gateway: Gateway): Promise<Server[]> {
  const servers: Server[] = [];
  try {
    for (const plan of plans) servers.push(await listenOne(plan, gateway));
  } catch (error) {
    for (const server of servers) server.close();
    throw error;
  }
  return servers;
}

function listenOne(plan: ListenerPlan, gateway: Gateway): Promise<Server> {
  const handle = gateway.handlerFor(plan.name);
  const server =
    plan.tls === null
      ? createServer({ ...gatewayServerOptions }, handle)
      : (createTlsServer({ ...gatewayServerOptions, cert: plan.tls.cert, key: plan.tls.key }, handle) as unknown as Server);
  server.on('upgrade', gateway.upgrade);
  return new Promise((resolvePromise, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(new Error(`cannot listen on ${plan.host}:${plan.port}: ${error.code ?? error.message}`));
    });
    server.listen(plan.port, plan.host, () => resolvePromise(server));
  });
}

/**
 * Where a server listens, for the log.
 *
 * @example
 * logger.info(addressOf(server), 'listening');
 */
export function addressOf(server: Server): { address: string; port: number } {
  const { address, port } = server.address() as AddressInfo;
  return { address, port };
}
