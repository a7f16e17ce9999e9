// Shared by the stress suites: a gateway child process, a keep-alive load client, an upstream.
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The gateway child process (`fixtures/gateway-process.ts`) in front of `target`. */
export interface Gateway {
  child: ChildProcess;
  url: string;
  ask<T>(message: string): Promise<T>;
  exited: Promise<number | null>;
}

/** Starts the gateway child with `--expose-gc` so its heap can be measured after a collection. */
export async function startGateway(target: string, env: Record<string, string> = {}): Promise<Gateway> {
  const child = fork(fileURLToPath(new URL('./fixtures/gateway-process.ts', import.meta.url)), {
    env: { ...process.env, TARGET: target, ...env },
    execArgv: ['--expose-gc', '--conditions=source', '--import', `${root}scripts/register.mjs`],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })));
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    exited,
    ask: <T>(message: string) =>
      new Promise<T>((resolve) => {
        child.once('message', (reply) => resolve(reply as T));
        child.send(message);
      }),
  };
}

/** The outcome of a load run. */
export interface LoadResult {
  ok: number;
  errors: string[];
  elapsedMs: number;
}

/**
 * Sends `total` requests at `concurrency` over keep-alive connections and checks each answer
 * with `check` (status and body). The agent is destroyed at the end.
 */
export async function runLoad(
  base: string,
  total: number,
  concurrency: number,
  check: (status: number, body: string, headers: Record<string, string | string[] | undefined>) => string | null,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const errors: string[] = [];
  let ok = 0;
  let sent = 0;
  const started = Date.now();
  const one = (index: number) =>
    new Promise<void>((resolve) => {
      const method = index % 5 === 0 ? 'POST' : 'GET';
      const req = request(
        `${base}/api/items/${index}?q=${index}`,
        { method, agent, headers: method === 'POST' ? { 'content-type': 'application/json', 'x-internal': 'secret' } : { 'x-internal': 'secret' } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => {
            const problem = check(res.statusCode ?? 0, body, res.headers);
            if (problem === null) ok++;
            else if (errors.length < 20) errors.push(problem);
            else errors.push('…');
            resolve();
          });
          res.on('error', (error) => {
            errors.push(`response error: ${error.message}`);
            resolve();
          });
        },
      );
      req.on('error', (error) => {
        errors.push(`request error: ${error.message}`);
        resolve();
      });
      req.end(method === 'POST' ? JSON.stringify({ index }) : undefined);
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < total) await one(sent++);
    }),
  );
  agent.destroy();
  return { ok, errors, elapsedMs: Date.now() - started };
}
