import { basename } from 'node:path';
import { Server as HttpServer } from 'node:http';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from '@relay/core';
import { checkApiOptions, checkPort } from './api-options.js';
import type { GatewayView } from './cluster-view.js';
import { ConfigError } from './config-error.js';
import { checkGatewayOptions, createGateway, type Gateway } from './gateway.js';
import { GatewayStoppingError } from './gateway-stopping.js';
import { addressOf, closeAllConnections, closeIdleConnections, listen, planListeners, type ListenerPlan, type ListenerServer } from './listeners.js';
import type { LimitStoreOf } from './generation.js';
import { loadConfig, type LoadedConfig } from './load-config.js';
import { gatewayMetrics } from './metrics.js';
import { watchConfig, type ConfigWatcher } from './watch.js';

/** Options of `serve`. */
export interface ServeOptions {
  /** The config file. */
  config: string;
  /** Replaces the port of the first listener (`--port`). */
  port?: number;
  /** Where the gateway logs. */
  logger: Logger;
  /** Reload when the file changes. Default `true`. */
  watch?: boolean;
  /** In a worker of `--workers N`: `/metrics` and the status JSON show every worker (`workerView()`). */
  view?: GatewayView;
  /** Where the routes' rate limits count (`createGateway`'s `limitStore`); a worker passes `workerLimitStores()`. */
  limitStore?: LimitStoreOf;
  /** The config's text to start from instead of the file (a worker gets the primary's serving config); reloads read the file. */
  source?: string;
}

const serveOptionNames: readonly string[] = ['config', 'port', 'logger', 'watch', 'view', 'source', 'limitStore'];

/** A gateway serving in this process. */
export interface RunningGateway {
  readonly gateway: Gateway;
  /** One per listener: node:http, or node:http2 (HTTP/2 and HTTP/1.1) for a TLS listener. */
  readonly servers: readonly ListenerServer[];
  /** Re-reads the config: `true` when the new one is in use, `false` when it was refused (and logged). */
  reload(): Promise<boolean>;
  /** Stops listening, drains in-flight requests up to `timeouts.shutdown`, closes every relay. */
  stop(): Promise<void>;
  /**
   * Ends every client connection now, requests in flight included, and logs it at warn with
   * `reason`: what the bin does on a second SIGTERM while `stop` drains, before it exits. Resolves
   * with how many connections were open.
   */
  cutConnections(reason: string): Promise<number>;
}

/**
 * Loads the config, starts its relays and listeners, and reloads on file changes (debounced).
 * A config error throws a `ConfigError`, a bad option a TypeError or RangeError naming it, before
 * anything listens; a failure once listening closes the listeners again before it rejects.
 *
 * @example
 * const running = await serve({ config: 'gateway.yaml', logger: createLogger() });
 * process.on('SIGHUP', () => void running.reload());
 */
export async function serve(options: ServeOptions): Promise<RunningGateway> {
  checkApiOptions(options, serveOptionNames, 'serve');
  // Checked here, not by createGateway: prom-client's registry takes the view before the gateway is built.
  checkGatewayOptions({ logger: options.logger, view: options.view, limitStore: options.limitStore }, 'serve');
  // A string port would reach server.listen() as a Unix socket path ("8080x" in the working directory).
  if (options.port !== undefined) checkPort(options.port, 'serve: port');
  const { logger } = options;
  let watcher: ConfigWatcher | null = null;
  const load = async () => {
    const next = withPort(await loadConfig(options.config), options.port);
    if (next.warning !== undefined) logger.warn({ config: basename(next.file) }, next.warning);
    // A module config's imports may change from one load to the next.
    watcher?.follow(next.files ?? []);
    return next;
  };
  const loaded = withPort(await loadConfig(options.config, process.env, options.source), options.port);
  if (loaded.warning !== undefined) logger.warn({ config: basename(loaded.file) }, loaded.warning);
  const plans = planListeners(loaded);
  let gateway: Gateway | null = null;
  const metrics = await gatewayMetrics(() => gateway, options.view);
  gateway = createGateway(loaded, { logger, metrics, view: options.view, limitStore: options.limitStore });
  const running = gateway;
  let servers: ListenerServer[];
  try {
    await running.startup();
    servers = await listen(plans, running);
  } catch (error) {
    // What did start (the routes that started before one failed, the Redis client) must not run on.
    await running.shutdown(0);
    throw error;
  }
  let reloader: Reloader;
  try {
    servers.forEach((server, index) => {
      const name = plans[index]!.name;
      logger.info({ ...(name === undefined ? {} : { listener: name }), ...addressOf(server), config: basename(loaded.file) }, 'listening');
    });
    reloader = new Reloader({ gateway: running, load, logger, servers, started: loaded.config.listen });
    if (options.watch !== false) watcher = watchConfig(loaded.file, () => void reloader.reload(), { files: loaded.files, seen: loaded.identity });
  } catch (error) {
    // The caller gets no RunningGateway to stop: listeners left open would keep the port and the process.
    for (const server of servers) {
      server.close();
      closeAllConnections(server);
    }
    await running.shutdown(0);
    throw error;
  }
  let stopping: Promise<void> | null = null;
  return {
    gateway: running,
    servers,
    reload: () => reloader.reload(),
    stop: () => (stopping ??= stopAll(running, servers, watcher, logger)),
    cutConnections: (reason) => cutConnections(running, servers, reason, logger),
  };
}

async function cutConnections(gateway: Gateway, servers: readonly ListenerServer[], reason: string, logger: Logger): Promise<number> {
  // Counted before they are ended; a listener already closed by `stop` still counts its connections.
  const counts = await Promise.all(servers.map((server) => new Promise<number>((resolve) => server.getConnections((error, count) => resolve(error ? 0 : count)))));
  const connections = counts.reduce((sum, count) => sum + count, 0);
  logger.warn({ reason, connections, inFlight: gateway.status().inFlight }, 'exiting now: connections cut');
  for (const server of servers) closeAllConnections(server);
  return connections;
}

async function stopAll(gateway: Gateway, servers: ListenerServer[], watcher: ConfigWatcher | null, logger: Logger): Promise<void> {
  watcher?.close();
  const timeout = gateway.config.timeouts.shutdown ?? 10_000;
  logger.info({ timeout, inFlight: gateway.status().inFlight }, 'stopping: draining in-flight requests');
  const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
  for (const server of servers) closeIdleConnections(server);
  await gateway.shutdown(timeout);
  for (const server of servers) closeAllConnections(server);
  await Promise.all(closed);
  logger.info({}, 'stopped');
}

function withPort(loaded: LoadedConfig, port: number | undefined): LoadedConfig {
  if (port === undefined) return loaded;
  const [first, ...rest] = loaded.config.listen;
  return { ...loaded, config: { ...loaded.config, listen: [{ ...first!, port }, ...rest] } };
}

interface ReloaderOptions {
  readonly gateway: Gateway;
  readonly load: () => Promise<LoadedConfig>;
  readonly logger: Logger;
  readonly servers: readonly ListenerServer[];
  /** The `listen` the servers were started with: a reload compares with it, not with the last reloaded config. */
  readonly started: LoadedConfig['config']['listen'];
}

/** Runs one reload at a time; a change that arrives during one runs after it. */
class Reloader {
  private running: Promise<boolean> | null = null;
  private again = false;
  private readonly started: string;

  constructor(private readonly options: ReloaderOptions) {
    this.started = JSON.stringify(options.started);
  }

  reload(): Promise<boolean> {
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    this.running = this.attempt().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        void this.reload();
      }
    });
    return this.running;
  }

  /**
   * Everything that can fail (loading, the TLS files, building and starting the relays) runs before
   * `gateway.reload` swaps the routes, so a reload is either applied or refused, never both.
   */
  private async attempt(): Promise<boolean> {
    const { gateway, logger } = this.options;
    let contexts: Array<SecureContextOptions | null>;
    try {
      const loaded = await this.options.load();
      // Certificates are read again (a renewal keeps the file names): an unreadable or invalid one refuses the reload.
      const plans = planListeners(loaded);
      // Compared with what the servers were started with: a changed `listen` stays pending (and
      // warned about on every reload) until a restart, and the plans no longer match the servers.
      const listenChanged = JSON.stringify(loaded.config.listen) !== this.started;
      if (listenChanged) logger.warn({}, 'listen addresses changed: they take effect on restart; routes are reloaded now');
      contexts = listenChanged ? [] : secureContexts(plans);
      await gateway.reload(loaded);
    } catch (error) {
      // Shutdown began before or during the reload: nothing is wrong with the config, nothing to count.
      if (error instanceof GatewayStoppingError) {
        logger.info({}, 'config reload abandoned: the gateway is stopping');
        return false;
      }
      gateway.reloads.failed++;
      const detail = error instanceof ConfigError ? error.message : (error as Error).message;
      logger.error({ error: detail }, 'config reload refused: the previous config keeps serving');
      return false;
    }
    this.renewCertificates(contexts);
    return true;
  }

  /**
   * Each TLS listener serves the certificate read now, for its new connections (nginx reloads them
   * so too). The plans match the servers one for one (same `listen`); `planListeners` has checked the pairs.
   */
  private renewCertificates(contexts: ReadonlyArray<SecureContextOptions | null>): void {
    let renewed = false;
    contexts.forEach((context, index) => {
      const server = this.options.servers[index];
      if (context === null || server === undefined || server instanceof HttpServer) return;
      server.setSecureContext(context);
      renewed = true;
    });
    if (renewed) this.options.logger.info({}, 'TLS certificates reloaded');
  }
}

/** The listeners' certificate and key (`planListeners` has refused a bad PEM, before anything changes). */
function secureContexts(plans: ListenerPlan[]): Array<SecureContextOptions | null> {
  return plans.map((plan) => (plan.tls === null ? null : { cert: plan.tls.cert, key: plan.tls.key }));
}
