import { readFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { gatewayServerOptions } from '@relay/core';
import { ConfigError, issueAt } from './config-error.js';
import { refuseConnect } from './connect-refusal.js';
import type { Gateway } from './gateway.js';
import type { LoadedConfig } from './load-config.js';
import { createSecureListener, endConnections, goAwaySessions } from './secure-listener.js';

/** A listener's server: node:http, or for a TLS listener node:http2 with HTTP/1.1 allowed. */
export type ListenerServer = Server | Http2SecureServer;

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
 * Starts one server per listener, every one serving the gateway's routes and WebSocket upgrades:
 * node:http with the slow-client limits of `gatewayServerOptions`, or for a TLS listener node:http2
 * offering HTTP/2 (ALPN `h2`) beside HTTP/1.1 (`createSecureListener`).
 *
 * @example
 * const servers = await listen(planListeners(loaded), gateway);
 */
export async function listen(plans: ListenerPlan[], gateway: Gateway): Promise<ListenerServer[]> {
  const servers: ListenerServer[] = [];
  try {
    for (const plan of plans) servers.push(await listenOne(plan, gateway));
  } catch (error) {
    for (const server of servers) server.close();
    throw error;
  }
  return servers;
}

function listenOne(plan: ListenerPlan, gateway: Gateway): Promise<ListenerServer> {
  const handle = gateway.handlerFor(plan.name);
  let server: ListenerServer;
  if (plan.tls === null) server = createServer({ ...gatewayServerOptions }, handle).on('upgrade', gateway.upgrade).on('connect', refuseConnect);
  else server = createSecureListener(plan.tls, handle).on('upgrade', gateway.upgrade).on('connect', refuseConnect);
  // `Expect: 100-continue` reaches the route instead of node answering 100 at once: bodyLimit's 413
  // to a declared length over the limit comes before any upload (nginx's client_max_body_size), and
  // otherwise the client gets 100 when the upstream sends it (or from core after 1 s of upstream
  // silence), as the relay written in code does.
  server.on('checkContinue', handle);
  return new Promise((resolvePromise, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(new Error(`cannot listen on ${plan.host}:${plan.port}: ${error.code ?? error.message}`));
    });
    server.listen(plan.port, plan.host, () => resolvePromise(server));
  });
}

/**
 * Shutdown, first step (after `server.close()`): idle connections closed, and on a TLS listener a
 * GOAWAY on every HTTP/2 session, so `close()` can complete once the requests in flight are done.
 *
 * @example
 * for (const server of servers) closeIdleConnections(server);
 */
export function closeIdleConnections(server: ListenerServer): void {
  if (server instanceof Server) server.closeIdleConnections();
  else goAwaySessions(server);
}

/**
 * Shutdown, last step, after the relays drained: every connection still open is ended.
 *
 * @example
 * for (const server of servers) closeAllConnections(server);
 */
export function closeAllConnections(server: ListenerServer): void {
  if (server instanceof Server) server.closeAllConnections();
  else endConnections(server);
}

/**
 * Where a server listens, for the log.
 *
 * @example
 * logger.info(addressOf(server), 'listening');
 */
export function addressOf(server: ListenerServer): { address: string; port: number } {
  const { address, port } = server.address() as AddressInfo;
  return { address, port };
}
