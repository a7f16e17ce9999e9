// The harness's side of the child processes: start one, ask it for its CPU and memory, stop it.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ParentMessage } from './child.js';

const childEntry = fileURLToPath(new URL('./child.js', import.meta.url));

export interface Child {
  name: string;
  port: number;
  /** The upstream's h2c port (the upstream child only). */
  h2cPort?: number;
  grpcPort?: number;
  /** The upstream's HTTP ports, `port` first: the pool of the balancing rows (the upstream child only). */
  poolPorts?: number[];
  process: ChildProcess;
}

/** The next message of one of `types` from the child; rejects if it fails, exits or stays silent. */
function nextMessage<T extends ChildMessage['type']>(proc: ChildProcess, types: T[], timeoutMs: number): Promise<Extract<ChildMessage, { type: T }>> {
  const type = types.join("' or '");
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no '${type}' from child ${proc.pid} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message: ChildMessage) => {
      if (message.type === 'failed') {
        cleanup();
        reject(new Error(`child ${proc.pid} failed: ${message.error}`));
      } else if ((types as string[]).includes(message.type)) {
        cleanup();
        resolve(message as Extract<ChildMessage, { type: T }>);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child ${proc.pid} exited (${code}) before '${type}'`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      proc.off('message', onMessage);
      proc.off('exit', onExit);
    };
    proc.on('message', onMessage);
    proc.on('exit', onExit);
  });
}

/**
 * Starts `node child.js <args>` with plain node: no TypeScript loader, no `source` condition
 * (so @relay packages load from their dist/), NODE_ENV=production as a deployed gateway runs.
 * Resolves with its port, or with the reason it skipped itself.
 */
export async function startChild(name: string, args: string[]): Promise<Child | { skipped: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production' };
  delete env.NODE_OPTIONS;
  // RELAY_BENCH_PROXY_ARGS (e.g. `--cpu-prof --cpu-prof-dir=prof`) goes to each proxy's node, for profiling a row.
  const execArgv = process.env.RELAY_BENCH_PROXY_ARGS?.split(' ').filter((arg) => arg !== '') ?? [];
  const proc = fork(childEntry, args, { execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let first: Extract<ChildMessage, { type: 'ready' | 'skipped' }>;
  try {
    first = await nextMessage(proc, ['ready', 'skipped'], 30_000);
  } catch (error) {
    proc.kill('SIGKILL');
    throw error;
  }
  if (first.type === 'skipped') {
    proc.kill();
    return { skipped: first.reason };
  }
  return { name, port: first.port, h2cPort: first.h2cPort, grpcPort: first.grpcPort, poolPorts: first.poolPorts, process: proc };
}

function send(child: Child, message: ParentMessage): void {
  child.process.send(message);
}

/** Marks the start of a measured window in the child (its CPU baseline). */
export async function begin(child: Child): Promise<void> {
  const answer = nextMessage(child.process, ['begun'], 10_000);
  send(child, { type: 'begin' });
  await answer;
}

/** CPU microseconds since `begin`, and the process's peak RSS so far (kB). */
export async function end(child: Child): Promise<{ cpuMicros: number; maxRssKb: number; allocatedBytes?: number }> {
  const answer = nextMessage(child.process, ['usage'], 10_000);
  send(child, { type: 'end' });
  const { cpuMicros, maxRssKb, allocatedBytes } = await answer;
  return { cpuMicros, maxRssKb, allocatedBytes };
}

/** Stops the child and waits for it to exit (killed after 5 s). */
export function stop(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.process.kill('SIGKILL'), 5_000);
    child.process.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.process.connected) send(child, { type: 'stop' });
    else child.process.kill();
  });
}
