// Drives the real `relay` bin as a child process: bin/relay.mjs under the workspace's TypeScript
// loader (as `pnpm test` runs every file), so the package's src/ is what runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../src/index.js';

const root = new URL('../../..', import.meta.url).pathname;
export const binPath = join(root, 'packages/gateway/bin/relay.mjs');
const nodeArgs = ['--conditions=source', '--import', join(root, 'scripts/register.mjs'), binPath];

/** A JSON log line of the bin. */
export interface LogLine {
  level: string;
  msg: string;
  pid: number;
  [field: string]: unknown;
}

/** A finished run: exit code, output. */
export interface BinResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the bin to completion (bounded: killed after `timeoutMs`). */
export function runBin(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<BinResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs, ...args], {
      cwd: options.cwd ?? root,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A bin running `serve`, its log lines parsed as they come. */
export interface ServingBin {
  child: ChildProcess;
  logs: LogLine[];
  /** Base URL of the first listener, from the `listening` log line. */
  url: string;
  port: number;
  stderr(): string;
  /** Resolves with the first log line (from now on or already seen) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `relay serve …` and waits until it listens (or `listeningCount` listeners, for workers). */
export async function startBin(args: string[], options: { env?: NodeJS.ProcessEnv; listeningCount?: number } = {}): Promise<ServingBin> {
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    cwd: root,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ level: 'raw', msg: line, pid: 0 });
      }
    }
    for (const waiter of waiters) waiter();
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  // Each worker loads the TypeScript sources itself: on a loaded 2-core machine three processes take ~15 s.
  const waitForLog = (match: (line: LogLine) => boolean, timeoutMs = 60_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const found = logs.find(match);
        if (found === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching log line within ${timeoutMs} ms; logs: ${JSON.stringify(logs)} stderr: ${stderr}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  try {
    const wanted = options.listeningCount ?? 1;
    await waitForLog(() => logs.filter((line) => line.msg === 'listening').length >= wanted);
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
  const listening = logs.find((line) => line.msg === 'listening')!;
  const port = listening.port as number;
  return { child, logs, url: `http://127.0.0.1:${port}`, port, stderr: () => stderr, waitForLog, stop };
}

/** A temporary folder for config files, removed by `cleanup`. */
export function configDir(): { dir: string; write(name: string, text: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'relay-gateway-'));
  return {
    dir,
    write(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The ConfigError `promise` rejects with; rethrows any other failure, throws when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
