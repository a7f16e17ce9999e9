// Micro-benchmark: the default node:http transport against the got transport, through the same
// relay, side by side in one run. The upstream and each relay run in their own process on
// 127.0.0.1; a keep-alive load generator in this process drives them in interleaved rounds.
// CPU per request comes from process.cpuUsage() of the relay process under load.
//
// Usage: pnpm bench:transports   (about a minute; writes a section into benchmarks/RESULTS.md)
// Env: ROUNDS (default 5), ROUND_MS (default 4000), CONCURRENCY (default 16).
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, request, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Role = 'upstream' | 'http' | 'got';
const role = process.argv[2] as Role | undefined;

if (role === undefined) await main();
else await child(role);

/** One child process: the upstream, or a relay with one transport. Reports its port, answers `cpu`. */
async function child(kind: Role): Promise<void> {
  let server: Server;
  if (kind === 'upstream') {
    const body = Buffer.from('{"message":"Hello from upstream"}');
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
  } else {
    const { createRelay, httpTransport } = await import('@relay/core');
    const { gotTransport } = await import('@relay/core/got');
    const relay = createRelay({
      targetBaseUrl: process.env.TARGET!,
      transport: kind === 'got' ? gotTransport() : httpTransport(),
    });
    await relay.startup();
    server = createServer(relay.handle);
  }
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('message', (message) => {
    if (message === 'cpu') process.send!({ cpu: process.cpuUsage() });
    else if (message === 'stop') process.exit(0);
  });
}

function start(kind: Role, env: Record<string, string> = {}): Promise<{ proc: ChildProcess; port: number }> {
  const proc = fork(fileURLToPath(import.meta.url), [kind], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('message', (message) => resolve({ proc, port: (message as { port: number }).port }));
  });
}

function cpuOf(proc: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    proc.once('message', (message) => {
      const { cpu } = message as { cpu: NodeJS.CpuUsage };
      resolve(cpu.user + cpu.system);
    });
    proc.send('cpu');
  });
}

/** Drives `concurrency` keep-alive connections at `port` for `ms`; resolves with the count of good responses. */
function load(port: number, ms: number, concurrency: number): Promise<{ requests: number; errors: number; elapsed: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const started = process.hrtime.bigint();
  const deadline = Date.now() + ms;
  let requests = 0;
  let errors = 0;
  const worker = () =>
    new Promise<void>((resolve) => {
      const next = () => {
        if (Date.now() >= deadline) return resolve();
        const req = request({ host: '127.0.0.1', port, path: '/bench?x=1', agent }, (res) => {
          res.on('data', () => {});
          res.on('end', () => {
            if (res.statusCode === 200) requests++;
            else errors++;
            next();
          });
        });
        req.on('error', () => {
          errors++;
          next();
        });
        req.end();
      };
      next();
    });
  return Promise.all(Array.from({ length: concurrency }, worker)).then(() => {
    agent.destroy();
    return { requests, errors, elapsed: Number(process.hrtime.bigint() - started) / 1e9 };
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function main(): Promise<void> {
  const rounds = Number(process.env.ROUNDS ?? 5);
  const roundMs = Number(process.env.ROUND_MS ?? 4000);
  const concurrency = Number(process.env.CONCURRENCY ?? 16);
  const upstream = await start('upstream');
  const target = `http://127.0.0.1:${upstream.port}`;
  const relays = { http: await start('http', { TARGET: target }), got: await start('got', { TARGET: target }) };
  const results: Record<'http' | 'got', { rps: number[]; cpu: number[]; errors: number }> = {
    http: { rps: [], cpu: [], errors: 0 },
    got: { rps: [], cpu: [], errors: 0 },
  };
  // Warm up both (JIT, keep-alive pools), then interleave measured rounds.
  for (const kind of ['http', 'got'] as const) await load(relays[kind].port, 1500, concurrency);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? (['http', 'got'] as const) : (['got', 'http'] as const);
    for (const kind of order) {
      const { proc, port } = relays[kind];
      const before = await cpuOf(proc);
      const { requests, errors, elapsed } = await load(port, roundMs, concurrency);
      const after = await cpuOf(proc);
      results[kind].rps.push(requests / elapsed);
      results[kind].cpu.push((after - before) / Math.max(1, requests));
      results[kind].errors += errors;
      console.log(`round ${round + 1} ${kind}: ${(requests / elapsed).toFixed(0)} req/s, ${((after - before) / Math.max(1, requests)).toFixed(1)} µs CPU/req`);
    }
  }
  for (const proc of [upstream.proc, relays.http.proc, relays.got.proc]) proc.send('stop');

  const http = { rps: median(results.http.rps), cpu: median(results.http.cpu) };
  const got = { rps: median(results.got.rps), cpu: median(results.got.cpu) };
  const cpu = cpus();
  const section = [
    '<!-- transports:start -->',
    '## Transports: node:http against got',
    '',
    `Run ${new Date().toISOString().slice(0, 10)} with \`pnpm bench:transports\`: Node ${process.version}, ${cpu[0]?.model.trim() ?? 'unknown CPU'} (${cpu.length} cores), ${process.platform}/${process.arch}.`,
    `Small GET (\`{"message":"Hello from upstream"}\`, 33 bytes) through one relay with no stages; upstream, each relay and`,
    `the load generator (${concurrency} keep-alive connections) in separate processes on 127.0.0.1; ${rounds} interleaved rounds of`,
    `${roundMs / 1000} s per transport after a warm-up; medians. CPU is the relay process's user + system time per request.`,
    '',
    '| transport | requests/s | CPU µs/request | CPU vs http |',
    '| --- | ---: | ---: | ---: |',
    `| \`httpTransport()\` (default) | ${http.rps.toFixed(0)} | ${http.cpu.toFixed(1)} | 1.00 |`,
    `| \`gotTransport()\` | ${got.rps.toFixed(0)} | ${got.cpu.toFixed(1)} | ${(got.cpu / http.cpu).toFixed(2)} |`,
    '',
    `Errors: http ${results.http.errors}, got ${results.got.errors}. The machine is shared with other work, so absolute`,
    'figures move between runs; the ratio, measured in the same run, is the number to compare.',
    '<!-- transports:end -->',
  ].join('\n');
  const file = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
  const existing = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
  const marked = /<!-- transports:start -->[\s\S]*?<!-- transports:end -->/;
  writeFileSync(file, marked.test(existing) ? existing.replace(marked, section) : `${existing.trimEnd()}\n\n${section}\n`);
  console.log(`\n${section}\n\nwritten to benchmarks/RESULTS.md`);
}
