// A real redis-server for tests (Debian's redis-server package, installed by .ci/run): started on a free
// port on 127.0.0.1 with nothing written to disk, killed by `stop()` and when the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';

/** A running redis-server. */
export interface RedisServer {
  port: number;
  process: ChildProcess;
  /** Kills it (SIGKILL: a crash, not a clean shutdown) and waits until it is gone. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Options of `startRedis()`. */
export interface StartRedisOptions {
  /** The port to listen on, to bring a server back on the port of one that was stopped. Default: a free one. */
  port?: number;
  /** More redis-server arguments, e.g. `['--requirepass', 'secret']`. */
  args?: string[];
}

/** Starts redis-server and resolves once it accepts connections (rejects after 10 s). */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killAtExit = () => child.kill('SIGKILL');
  process.once('exit', killAtExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 10_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return {
    port,
    process: child,
    stop: async () => {
      process.off('exit', killAtExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
