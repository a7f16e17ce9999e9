import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '@relay/core';
import { maxTimerDelay } from '@relay/core/transport';
import { checkApiOptions, checkWorkers } from './api-options.js';
import { serveClusterLimits } from './cluster-limits.js';
import { serveClusterView } from './cluster-view.js';
import { ConfigError } from './config-error.js';
import { checkRoutes } from './generation.js';
import { planListeners } from './listeners.js';
import { loadConfig, type LoadedConfig } from './load-config.js';
import { checkLogger } from './log.js';
import type { RunningGateway } from './serve.js';
import { onStopSignals } from './stop-signals.js';
import { watchConfig } from './watch.js';

/** Messages from the primary to its workers; `relay:exit`: a second stop signal, cut every connection and exit now. */
export type WorkerMessage = { type: 'relay:reload' } | { type: 'relay:stop' } | { type: 'relay:exit' };

/** After a second stop signal, how long the primary waits for its workers before it kills them. */
const exitNowKillMs = 2_000;

/**
 * Set in a worker's environment: the primary watches the file and forwards reloads.
 *
 * @example
 * const watch = process.env[workerNoWatchEnv] !== '1';
 */
export const workerNoWatchEnv = 'RELAY_GATEWAY_WORKER';

/**
 * Set in a worker's environment: the text of the config that is serving, which the worker starts
 * from instead of the file (the file may hold an edit the primary refused).
 *
 * @example
 * const source = process.env[workerConfigEnv];
 */
export const workerConfigEnv = 'RELAY_GATEWAY_CONFIG';

/** Below Linux's limit on one environment string (128 KiB): a bigger config is read from its file. */
const maxPassedConfig = 100_000;

/** Options of `runPrimary`. */
export interface PrimaryOptions {
  config: string;
  workers: number;
  logger: Logger;
}

const primaryOptionNames: readonly string[] = ['config', 'workers', 'logger'];

/**
 * The primary of `--workers N`: forks N workers running the same command line (they share the
 * listening sockets through node:cluster), restarts a worker that dies (backoff from 100 ms to
 * 10 s, reset once a worker has lived 10 s), forwards SIGHUP and file changes to every worker as a
 * reload after validating the config itself, gathers the workers' figures for `/metrics` and the
 * status page (`serveClusterView`), counts the routes' rate limits for all of them
 * (`serveClusterLimits`), and on SIGTERM/SIGINT asks every worker to drain and waits
 * for them, up to the shutdown timeout plus 5 s; a second SIGTERM/SIGINT tells them to exit now
 * (killing any still running 2 s later) and resolves with 1. Resolves with the exit code.
 *
 * @example
 * process.exitCode = await runPrimary({ config: 'gateway.yaml', workers: 4, logger });
 */
export async function runPrimary(options: PrimaryOptions): Promise<number> {
  checkApiOptions(options, primaryOptionNames, 'runPrimary');
  // The CLI's --workers rule: -1 or 2.5 would otherwise fail as "Invalid array length", or fork nothing.
  checkWorkers(options.workers, 'runPrimary: workers');
  checkLogger(options.logger, 'runPrimary: logger');
  const loaded = await loadConfig(options.config);
  if (loaded.warning !== undefined) options.logger.warn({}, loaded.warning);
  planListeners(loaded);
  checkRoutes(loaded);
  const pool = new WorkerPool(options, loaded.config.timeouts.shutdown ?? 10_000, loaded.text);
  serveClusterView({ logger: options.logger, clusterMetrics: await clusterMetrics() });
  serveClusterLimits();
  const watcher = watchConfig(loaded.file, () => void pool.reload(), { files: loaded.files, seen: loaded.identity });
  pool.onLoaded = (next) => watcher.follow(next.files ?? []);
  process.on('SIGHUP', () => void pool.reload());
  const code = await new Promise<number>((resolve) => {
    pool.onFinished = resolve;
    onStopSignals({ drain: (signal) => pool.stop(signal), exitNow: (signal) => pool.exitNow(signal) });
    pool.start();
  });
  watcher.close();
  return code;
}

/** The primary's workers: one slot per worker, each refilled when its worker dies. */
class WorkerPool {
  onFinished: (code: number) => void = () => {};
  /** Each config the primary loads: a module config's imports may change from one to the next. */
  onLoaded: (loaded: LoadedConfig) => void = () => {};
  private readonly slots = new Map<Worker, { slot: number; started: number }>();
  private readonly failures: number[];
  private everListened = false;
  private stopping = false;
  private exitCode = 0;

  constructor(
    private readonly options: PrimaryOptions,
    private shutdownTimeout: number,
    /** The config serving now, which a worker started later is given: a refused edit in the file must not reach it. */
    private servingText: string | null,
  ) {
    this.failures = new Array<number>(options.workers).fill(0);
  }

  start(): void {
    cluster.on('listening', () => {
      this.everListened = true;
    });
    cluster.on('exit', (worker, code, signal) => this.exited(worker, code, signal));
    for (let slot = 0; slot < this.options.workers; slot++) this.fork(slot);
    this.options.logger.info({ workers: this.options.workers }, 'primary started');
  }

  /** Validates the config here first (schema, listeners, relays built unstarted): a broken one is logged once and never reaches the workers. */
  async reload(): Promise<void> {
    try {
      const next = await loadConfig(this.options.config);
      if (next.warning !== undefined) this.options.logger.warn({}, next.warning);
      this.onLoaded(next);
      planListeners(next);
      // As `relay check` does: the schema passes some configs a stage factory refuses, and a worker
      // restarted with one as the serving text could never start.
      checkRoutes(next);
      this.shutdownTimeout = next.config.timeouts.shutdown ?? 10_000;
      this.servingText = next.text;
    } catch (error) {
      const detail = error instanceof ConfigError ? error.message : (error as Error).message;
      this.options.logger.error({ error: detail }, 'config reload refused: the previous config keeps serving');
      return;
    }
    this.options.logger.info({ workers: this.slots.size }, 'reloading workers');
    for (const worker of this.slots.keys()) send(worker, { type: 'relay:reload' });
  }

  /** Asks every worker to drain; kills the ones still running at the shutdown timeout plus 5 s. */
  stop(reason: string, exitCode = 0): void {
    if (this.stopping) return;
    this.stopping = true;
    this.exitCode = exitCode;
    this.options.logger.info({ reason, workers: this.slots.size }, 'stopping workers');
    for (const worker of this.slots.keys()) send(worker, { type: 'relay:stop' });
    const deadline = setTimeout(() => {
      for (const worker of this.slots.keys()) worker.process.kill('SIGKILL');
      this.options.logger.error({ workers: this.slots.size }, 'workers did not stop in time: killed');
      this.exitCode = 1;
    }, killDelay(this.shutdownTimeout));
    deadline.unref();
    this.finishIfEmpty();
  }

  /** A second stop signal: every worker cuts its connections and exits now; one still running after 2 s is killed. */
  exitNow(signal: NodeJS.Signals): void {
    this.exitCode = 1;
    this.options.logger.warn({ reason: `second ${signal}`, workers: this.slots.size }, 'exiting now: workers told to cut their connections');
    for (const worker of this.slots.keys()) send(worker, { type: 'relay:exit' });
    const deadline = setTimeout(() => {
      for (const worker of this.slots.keys()) worker.process.kill('SIGKILL');
    }, exitNowKillMs);
    deadline.unref();
    this.finishIfEmpty();
  }

  private fork(slot: number): void {
    const text = this.servingText;
    const passed = text !== null && text.length <= maxPassedConfig ? { [workerConfigEnv]: text } : {};
    const worker = cluster.fork({ [workerNoWatchEnv]: '1', ...passed });
    this.slots.set(worker, { slot, started: Date.now() });
  }

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    const entry = this.slots.get(worker);
    this.slots.delete(worker);
    if (this.stopping || entry === undefined) return this.finishIfEmpty();
    if (!this.everListened) {
      // No worker ever came up (a port in use, a config that changed since the check): restarting would loop.
      this.options.logger.error({ worker: worker.id, code, signal }, 'a worker failed before any listened: stopping');
      return this.stop('startup failed', code === 2 ? 2 : 1);
    }
    const lived = Date.now() - entry.started;
    // The failures before this one: the first restart waits 100 ms, then 200, 400 … up to 10 s.
    const failures = lived > 10_000 ? 0 : this.failures[entry.slot]!;
    this.failures[entry.slot] = failures + 1;
    const delay = restartDelay(failures);
    this.options.logger.error({ worker: worker.id, code, signal, restartIn: delay }, 'worker died: restarting it');
    setTimeout(() => {
      if (!this.stopping) this.fork(entry.slot);
    }, delay);
  }

  private finishIfEmpty(): void {
    if (!this.stopping || this.slots.size > 0) return;
    this.options.logger.info({}, 'stopped');
    this.onFinished(this.exitCode);
  }
}

/**
 * How long the primary waits before restarting a worker that died after `failures` quick deaths
 * in a row (each within 10 s of its start): 100 ms, doubling, at most 10 s.
 *
 * @example
 * restartDelay(0); // 100
 */
export function restartDelay(failures: number): number {
  return Math.min(100 * 2 ** failures, 10_000);
}

/**
 * How long the primary waits for draining workers before it kills them: the shutdown timeout plus
 * 5 s, no longer than node's timers reach (a longer wait would kill them after 1 ms).
 *
 * @example
 * killDelay(10_000); // 15_000
 */
export function killDelay(shutdownTimeout: number): number {
  return Math.min(shutdownTimeout + 5_000, maxTimerDelay);
}

/**
 * A worker's side: reloads and stops on the primary's messages (and on its own signals, which a
 * terminal's Ctrl-C also delivers to it); `relay:exit`, or a second signal of its own, cuts every
 * connection and resolves with 1 at once. Resolves with the exit code once stopped.
 *
 * @example
 * process.exitCode = await runWorker(await serve({ config, logger, watch: false }));
 */
export function runWorker(running: RunningGateway): Promise<number> {
  return new Promise((resolve) => {
    const stop = () => void running.stop().then(() => resolve(0), () => resolve(1));
    const exitNow = (reason: string) => void running.cutConnections(reason).then(() => resolve(1), () => resolve(1));
    process.on('message', (message: WorkerMessage) => {
      if (message?.type === 'relay:reload') void running.reload();
      else if (message?.type === 'relay:stop') stop();
      else if (message?.type === 'relay:exit') exitNow('the primary got a second stop signal');
    });
    process.on('SIGHUP', () => void running.reload());
    // Its own signals are counted apart from the primary's messages: one Ctrl-C reaches both this
    // worker and the primary, which forwards it as `relay:stop`, and must still only drain.
    onStopSignals({ drain: stop, exitNow: (signal) => exitNow(`second ${signal}`) });
    // A primary that died without asking: stop rather than serve on as an orphan.
    process.on('disconnect', stop);
  });
}

/** prom-client's aggregation of every worker's registry; null when prom-client is not installed. */
async function clusterMetrics(): Promise<(() => Promise<string>) | null> {
  try {
    const { AggregatorRegistry } = await import('prom-client');
    const aggregator = new AggregatorRegistry();
    return () => aggregator.clusterMetrics();
  } catch {
    return null;
  }
}

function send(worker: Worker, message: WorkerMessage): void {
  if (worker.isConnected()) worker.send(message);
}
