import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { Logger } from '@relay/core';
import { isPort, isWorkerCount } from './api-options.js';
import { ConfigError } from './config-error.js';
import { checkRoutes } from './generation.js';
import { planListeners } from './listeners.js';
import { loadConfig } from './load-config.js';
import { createLogger, logLevels, type LogLevel } from './log.js';
import type { RunningGateway } from './serve.js';
import { onStopSignals } from './stop-signals.js';

/**
 * Exit codes of the `relay` bin.
 *
 * @example
 * if (code === exitCodes.usageError) console.error('fix the config');
 */
export const exitCodes = Object.freeze({ ok: 0, runtimeError: 1, usageError: 2 });

const usage = `Usage: relay <command> [config] [options]

Commands:
  serve [config]           start the gateway (config default: ./gateway.yaml)
  check [config]           validate the config (and read its TLS files) without starting

Options:
  -c, --config <file>      the config file: .yaml, .yml, .json, .ts, .mts, .js, .mjs or .cjs
  -p, --port <port>        listen on this port instead of the first listener's
  -w, --workers <n|auto>   worker processes (default 1; auto = available parallelism)
      --log-level <level>  debug, info, warn or error (default info)
  -h, --help               show this help
  -v, --version            show the version

Signals: SIGHUP reloads the config (so does saving the file); SIGTERM or SIGINT drain and exit 0;
         a second SIGTERM or SIGINT while draining cuts every connection and exits 1 at once.
Exit codes: 0 ok, 1 runtime error (e.g. a port in use) or a second stop signal, 2 usage or config error.
`;

class UsageError extends Error {}

interface Invocation {
  command: 'serve' | 'check' | 'help' | 'version';
  config: string;
  port: number | undefined;
  workers: number;
  logLevel: LogLevel;
}

/**
 * Runs the `relay` command line and resolves with its exit code (`serve` resolves once stopped).
 *
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: string[], io: { stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream } = process): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv);
  } catch (error) {
    io.stderr.write(`relay: ${(error as Error).message}\n\n${usage}`);
    return exitCodes.usageError;
  }
  if (invocation.command === 'help') return void io.stdout.write(usage), exitCodes.ok;
  if (invocation.command === 'version') return void io.stdout.write(`${version()}\n`), exitCodes.ok;
  const logger = createLogger({ level: invocation.logLevel, base: cluster.isWorker ? { worker: cluster.worker!.id } : {} });
  try {
    if (invocation.command === 'check') return await check(invocation, io.stdout);
    if (invocation.workers > 1 && cluster.isPrimary) {
      const { runPrimary } = await import('./cluster.js');
      return await runPrimary({ config: invocation.config, workers: invocation.workers, logger });
    }
    return await serveHere(invocation, logger);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`${error.message}\n`);
      return exitCodes.usageError;
    }
    logger.error({ error: (error as Error).message }, 'relay failed');
    return exitCodes.runtimeError;
  }
}

async function check(invocation: Invocation, stdout: NodeJS.WritableStream): Promise<number> {
  const loaded = await loadConfig(invocation.config);
  planListeners(loaded);
  // Building the relays runs every stage factory's own checks; nothing is started.
  const generation = checkRoutes(loaded, createLogger({ level: 'error' }));
  const listeners = loaded.config.listen.length;
  stdout.write(`${invocation.config}: ok (${generation.routes.length} route${generation.routes.length === 1 ? '' : 's'}, ${listeners} listener${listeners === 1 ? '' : 's'})\n`);
  return exitCodes.ok;
}

/** Serves in this process; imported on demand so `relay check` loads no server code (nor prom-client). */
async function serveHere(invocation: Invocation, logger: Logger): Promise<number> {
  const [{ serve }, { runWorker, workerConfigEnv, workerNoWatchEnv }, { answerSnapshots, workerView }, { workerLimitStores }] = await Promise.all([
    import('./serve.js'),
    import('./cluster.js'),
    import('./cluster-view.js'),
    import('./cluster-limits.js'),
  ]);
  const inWorker = cluster.isWorker;
  const view = inWorker ? workerView() : undefined;
  const source = inWorker ? process.env[workerConfigEnv] : undefined;
  // A worker's rate limits count in the primary: N workers must not let N times the limit through.
  const limitStore = inWorker ? workerLimitStores() : undefined;
  const held = holdSighup();
  try {
    const running = await serve({ config: invocation.config, port: invocation.port, logger, watch: process.env[workerNoWatchEnv] !== '1', view, source, limitStore });
    if (inWorker) answerSnapshots(() => running.gateway.status());
    // Both install their own SIGHUP handler synchronously, before the held one is let go.
    const stopped = inWorker ? runWorker(running) : untilStopped(running);
    if (held.release()) void running.reload();
    return await stopped;
  } finally {
    held.release();
  }
}

/**
 * SIGHUP's default action ends the process, and `listening` is logged (a supervisor may signal
 * from then on) before `serve` returns: the signal is handled from the start, and one received
 * while starting reloads the config once the gateway serves. `release` says whether one came.
 */
function holdSighup(): { release(): boolean } {
  let received = false;
  const hold = () => {
    received = true;
  };
  process.on('SIGHUP', hold);
  return {
    release() {
      process.off('SIGHUP', hold);
      const came = received;
      received = false;
      return came;
    },
  };
}

/** The first SIGTERM/SIGINT drains (exit 0); a second one cuts every connection and exits 1 at once. */
function untilStopped(running: RunningGateway): Promise<number> {
  return new Promise((resolve) => {
    const failed = () => resolve(exitCodes.runtimeError);
    onStopSignals({
      drain: () => void running.stop().then(() => resolve(exitCodes.ok), failed),
      exitNow: (signal) => void running.cutConnections(`second ${signal}`).then(failed, failed),
    });
    process.on('SIGHUP', () => void running.reload());
  });
}

function parseInvocation(argv: string[]): Invocation {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      port: { type: 'string', short: 'p' },
      workers: { type: 'string', short: 'w' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
  const base = { config: 'gateway.yaml', port: undefined, workers: 1, logLevel: 'info' as LogLevel };
  if (values.help === true) return { ...base, command: 'help' };
  if (values.version === true) return { ...base, command: 'version' };
  const [command, positionalConfig, ...extra] = positionals;
  if (command === undefined) throw new UsageError('a command is required: serve or check');
  if (command !== 'serve' && command !== 'check') throw new UsageError(`unknown command "${command}" (expected serve or check)`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (positionalConfig !== undefined && values.config !== undefined) throw new UsageError('give the config once: as an argument or with --config');
  return {
    command,
    config: positionalConfig ?? values.config ?? base.config,
    port: values.port === undefined ? undefined : parsePort(values.port),
    workers: values.workers === undefined ? 1 : parseWorkers(values.workers),
    logLevel: values['log-level'] === undefined ? 'info' : parseLevel(values['log-level']),
  };
}

// Digits only: Number() would also read "0x50", "1e3" or " 80". The range is the API's own rule.
function parsePort(text: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!isPort(port)) throw new UsageError(`--port must be a port number from 0 to 65535, got "${text}"`);
  return port;
}

function parseWorkers(text: string): number {
  if (text === 'auto') return availableParallelism();
  const workers = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!isWorkerCount(workers)) throw new UsageError(`--workers must be a number from 1 to 1024 or auto, got "${text}"`);
  return workers;
}

function parseLevel(text: string): LogLevel {
  if (!(logLevels as readonly string[]).includes(text)) throw new UsageError(`--log-level must be one of ${logLevels.join(', ')}, got "${text}"`);
  return text as LogLevel;
}

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}
