import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '@relay/core';
import { ConfigError } from './config-error.js';
import { planListeners } from './listeners.js';
import { loadConfig } from './load-config.js';
import type { RunningGateway } from './serve.js';
import { watchConfig } from './watch.js';

/** Messages from the primary to its workers. */
export type WorkerMessage = { type: 'relay:reload' } | { type: 'relay:stop' };

/** Set in a worker's environment: the primary watches the file and forwards reloads. */
export const workerNoWatchEnv = 'RELAY_GATEWAY_WORKER';

/** Options of `runPrimary`. */
export interface PrimaryOptions {
  config: string;
  workers: number;
  logger: Logger;
}

/**
 * The primary of `--workers N`: forks N workers running the same command line (they share the
 * listening sockets through node:cluster), restarts a worker that dies (backoff from 100 ms to
 * 10 s, reset once a worker has lived 10 s), forwards SIGHUP and file changes to every worker as a
 * reload after validating the config itself, and on SIGTERM/SIGINT asks every worker to drain and
 * waits for them, up to the shutdown timeout plus 5 s. Resolves with the exit code.
 *
 * @example
 * process.exitCode = await runPrimary({ config: 'gateway.yaml', workers: 4, logger });
 */
export async function runPrimary(options: PrimaryOptions): Promise<number> {
  const { logger } = options;
  const loaded = await loadConfig(options.config);
  planListeners(loaded);
  let shutdownTimeout = loaded.config.timeouts.shutdown ?? 10_000;
  let stopping = false;
  const slots = new Map<Worker, { slot: number; started: number }>();
  const failures = new Array<number>(options.workers).fill(0);

  let everListened = false;
  cluster.on('listening', () => {
    everListened = true;
  });
  let giveUp: ((code: number) => void) | null = null;
  const fork = (slot: number) => {
    const worker = cluster.fork({ [workerNoWatchEnv]: '1' });
    slots.set(worker, { slot, started: Date.now() });
  };
  cluster.on('exit', (worker, code, signal) => {
    const entry = slots.get(worker);
    slots.delete(worker);
    if (stopping || entry === undefined) return;
    if (!everListened) {
      // No worker ever came up (a port in use, a config that changed since the check): restarting would loop.
      logger.error({ worker: worker.id, code, signal }, 'a worker failed before any listened: stopping');
      giveUp?.(code === 2 ? 2 : 1);
      return;
    }
    const lived = Date.now() - entry.started;
    failures[entry.slot] = lived > 10_000 ? 0 : failures[entry.slot]! + 1;
    const delay = Math.min(100 * 2 ** failures[entry.slot]!, 10_000);
    logger.error({ worker: worker.id, code, signal, restartIn: delay }, 'worker died: restarting it');
    setTimeout(() => {
      if (!stopping) fork(entry.slot);
    }, delay);
  });
  for (let slot = 0; slot < options.workers; slot++) fork(slot);
  logger.info({ workers: options.workers }, 'primary started');

  const reload = async () => {
    try {
      const next = await loadConfig(options.config);
      planListeners(next);
      shutdownTimeout = next.config.timeouts.shutdown ?? 10_000;
    } catch (error) {
      logger.error({ error: error instanceof ConfigError ? error.message : (error as Error).message }, 'config reload refused: the previous config keeps serving');
      return;
    }
    logger.info({ workers: slots.size }, 'reloading workers');
    for (const worker of slots.keys()) send(worker, { type: 'relay:reload' });
  };
  const watcher = watchConfig(loaded.file, () => void reload());
  process.on('SIGHUP', () => void reload());

  return new Promise((resolve) => {
    giveUp = (code) => {
      stopping = true;
      watcher.close();
      for (const worker of slots.keys()) worker.process.kill('SIGTERM');
      const check = () => slots.size === 0 && resolve(code);
      cluster.on('exit', check);
      check();
    };
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      watcher.close();
      logger.info({ signal, workers: slots.size }, 'stopping workers');
      for (const worker of slots.keys()) send(worker, { type: 'relay:stop' });
      const deadline = setTimeout(() => {
        for (const worker of slots.keys()) worker.process.kill('SIGKILL');
        logger.error({ workers: slots.size }, 'workers did not stop in time: killed');
        resolve(1);
      }, shutdownTimeout + 5_000);
      const check = () => {
        if (slots.size > 0) return;
        clearTimeout(deadline);
        logger.info({}, 'stopped');
        resolve(0);
      };
      cluster.on('exit', check);
      check();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/**
 * A worker's side: reloads and stops on the primary's messages (and on its own signals, which a
 * terminal's Ctrl-C also delivers to it). Resolves with the exit code once stopped.
 *
 * @example
 * process.exitCode = await runWorker(await serve({ config, logger, watch: false }));
 */
export function runWorker(running: RunningGateway): Promise<number> {
  return new Promise((resolve) => {
    const stop = () => void running.stop().then(() => resolve(0), () => resolve(1));
    process.on('message', (message: WorkerMessage) => {
      if (message?.type === 'relay:reload') void running.reload();
      else if (message?.type === 'relay:stop') stop();
    });
    process.on('SIGHUP', () => void running.reload());
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // A primary that died without asking: stop rather than serve on as an orphan.
    process.on('disconnect', stop);
  });
}

function send(worker: Worker, message: WorkerMessage): void {
  if (worker.isConnected()) worker.send(message);
}
