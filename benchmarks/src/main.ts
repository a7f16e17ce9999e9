// The harness: starts the upstream and each proxy in its own process, drives them in interleaved
// rounds with autocannon (or the WebSocket client), collects each proxy's CPU and RSS over IPC,
// measures each ratio target's pair in back-to-back windows, and writes the report. Run through `pnpm bench` (see benchmarks/README.md).
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeSockets, httpLoad, openSockets, verify, wsLoad, type LoadResult } from './load.js';
import { begin, end, startChild, stop, type Child } from './processes.js';
import { comparisonPairs, ratioTargets, renderReport, type RunInfo } from './report.js';
import { isWebSocket, parseArgs, proxies, runsWorkload, workloads, type ProxyName, type Settings, type Timing, type Workload } from './settings.js';
import type { PairRun, ProxyRun, WorkloadRun } from './stats.js';

const require = createRequire(import.meta.url);
const startedAt = Date.now();

/** A progress line, prefixed with the seconds since the harness started. */
function log(line: string): void {
  console.log(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(5)} s] ${line}`);
}

function versionOf(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return versionBeside(name);
  }
}

/** The version of a package whose exports map hides its package.json (hono): read beside its entry. */
function versionBeside(name: string): string {
  try {
    let dir = dirname(require.resolve(name));
    while (!existsSync(join(dir, 'package.json')) || basename(dir) !== name.split('/').at(-1)) {
      if (dirname(dir) === dir) return '?';
      dir = dirname(dir);
    }
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

function label(name: ProxyName): string {
  const info = proxies.find((p) => p.name === name)!;
  return info.versionOf === undefined ? info.label : info.label.replace('{version}', versionOf(info.versionOf));
}

/** A proxy in a workload: where to send load, and the child to ask for CPU (none for `direct`). */
interface Subject {
  run: ProxyRun;
  port: number;
  child: Child | null;
}

/** One window of load on `subject`: autocannon for HTTP, the ping-pong client for WebSocket. */
async function load(subject: Subject, workload: Workload, seconds: number, connections: number): Promise<LoadResult> {
  if (!isWebSocket(workload)) return httpLoad(subject.port, workload, seconds, connections);
  const sockets = await openSockets(subject.port, workload, connections);
  try {
    return await wsLoad(sockets, seconds, workload);
  } finally {
    await closeSockets(sockets);
  }
}

/** One window's load result and the proxy's CPU and peak RSS over it. */
interface Measured {
  result: LoadResult;
  usage: { cpuMicros: number; maxRssKb: number } | null;
}

/** A measured window: the proxy's CPU baseline, the load, the proxy's CPU and RSS after it. */
async function measureWindow(subject: Subject, workload: Workload, seconds: number, connections: number): Promise<Measured> {
  const wsSockets = isWebSocket(workload) ? await openSockets(subject.port, workload, connections) : null;
  if (subject.child !== null) await begin(subject.child);
  const result = wsSockets === null ? await httpLoad(subject.port, workload, seconds, connections) : await wsLoad(wsSockets, seconds, workload);
  const usage = subject.child === null ? null : await end(subject.child);
  if (wsSockets !== null) await closeSockets(wsSockets);
  return { result, usage };
}

function cpuPerUnit({ result, usage }: Measured): number | null {
  return usage === null ? null : usage.cpuMicros / Math.max(1, result.completed);
}

/** A round's window of `subject`, recorded in its run and logged. */
async function measure(subject: Subject, workload: Workload, round: number, seconds: number, connections: number): Promise<void> {
  const measured = await measureWindow(subject, workload, seconds, connections);
  const { result, usage } = measured;
  subject.run.windows.push({
    round,
    rate: result.rate,
    p50: result.p50,
    p99: result.p99,
    completed: result.completed,
    errors: result.errors,
    cpuPerUnit: cpuPerUnit(measured),
    maxRssMb: usage === null ? null : usage.maxRssKb / 1024,
  });
  const cpu = usage === null ? '' : `, ${cpuPerUnit(measured)!.toFixed(1)} µs CPU/${workload.unit}, ${(usage.maxRssKb / 1024).toFixed(0)} MB peak RSS`;
  log(`round ${round} ${subject.run.proxy}: ${result.rate.toFixed(0)} ${workload.unit}/s, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms${cpu}${result.errors > 0 ? `, ${result.errors} ERRORS` : ''}`);
}

/** Seconds of each window in the paired phase: short, so the two proxies' windows sit close together. */
const PAIR_SECONDS = 2;

/**
 * The paired phase: each ratio target's two proxies in alternating windows (A B, B A, …), the
 * ratio taken within each pair. Spells of a faster or slower machine then fall on both sides,
 * where the rounds put a pair's windows up to a round (every proxy) apart.
 */
async function runPairs(subjects: Subject[], workload: Workload, timing: Timing, connections: number): Promise<PairRun[]> {
  const pairs: PairRun[] = [];
  if (timing.pairs === 0) return pairs;
  // A shorter --duration (the smoke test) shortens these windows too.
  const seconds = Math.min(PAIR_SECONDS, timing.duration);
  for (const spec of [...ratioTargets, ...comparisonPairs]) {
    if (spec.workload !== workload.name || pairs.some((p) => p.proxy === spec.proxy && p.reference === spec.reference)) continue;
    const a = subjects.find((s) => s.run.proxy === spec.proxy);
    const b = subjects.find((s) => s.run.proxy === spec.reference);
    if (a === undefined || b === undefined) continue;
    const pair: PairRun = { proxy: spec.proxy, reference: spec.reference, windows: [], errors: 0, referenceErrors: 0 };
    for (let index = 0; index < timing.pairs; index++) {
      const first = index % 2 === 0 ? a : b;
      const second = first === a ? b : a;
      const one = await measureWindow(first, workload, seconds, connections);
      const two = await measureWindow(second, workload, seconds, connections);
      const [mine, theirs] = first === a ? [one, two] : [two, one];
      pair.windows.push({ rate: mine.result.rate, referenceRate: theirs.result.rate, cpu: cpuPerUnit(mine), referenceCpu: cpuPerUnit(theirs) });
      pair.errors += mine.result.errors;
      pair.referenceErrors += theirs.result.errors;
    }
    const rates = pair.windows.map((w) => w.rate / w.referenceRate);
    log(`paired ${spec.proxy} / ${spec.reference}: req/s ratios ${rates.map((r) => r.toFixed(2)).join(' ')}`);
    pairs.push(pair);
  }
  return pairs;
}

/** The upstream process's ports: HTTP/1.1 (and WebSocket), h2c with the same answers, gRPC, and the balancing rows' pool (`http` first). */
interface UpstreamPorts {
  http: number;
  h2c: number;
  grpc: number;
  pool: number[];
}

/** Where `name` sends its requests: relay-h2 speaks h2c to the upstream's second port, the gRPC rows go to its gRPC server. */
function targetOf(name: ProxyName, ports: UpstreamPorts): string {
  const port = name === 'relay-h2' ? ports.h2c : name === 'relay-grpc' || name === 'fastify-http-proxy-grpc' ? ports.grpc : ports.http;
  return `http://127.0.0.1:${port}`;
}

/** What `direct` connects to: the upstream's port that speaks the workload's protocol. */
function directPort(workload: Workload, ports: UpstreamPorts): number {
  return workload.name === 'grpc-unary' ? ports.grpc : workload.name === 'h2-small-get' ? ports.h2c : ports.http;
}

async function runWorkload(workload: Workload, timing: Timing, settings: Settings, ports: UpstreamPorts): Promise<WorkloadRun> {
  // The balancing rows' upstreams: the upstream process's HTTP ports.
  const pool = ports.pool.map((port) => `http://127.0.0.1:${port}`).join(',');
  const names = settings.proxies.filter((name) => runsWorkload(name, workload));
  log(`${workload.title}: ${names.join(', ')}; ${timing.rounds} rounds × ${timing.duration} s after ${timing.warmup} s warm-up`);
  // Fresh proxy processes per workload, so peak RSS belongs to this workload alone.
  const started = await Promise.all(
    names.map(async (name): Promise<Subject | ProxyRun> => {
      const run: ProxyRun = { proxy: name, label: label(name), warmupErrors: 0, windows: [] };
      if (name === 'direct') return { run, port: directPort(workload, ports), child: null };
      try {
        const child = await startChild(name, [name, targetOf(name, ports), isWebSocket(workload) ? 'ws' : 'http', pool]);
        if ('skipped' in child) return { ...run, skipped: child.skipped };
        return { run, port: child.port, child };
      } catch (error) {
        log(`${name} did not start: ${error instanceof Error ? error.message : String(error)}`);
        return { ...run, skipped: 'did not start (see the log)' };
      }
    }),
  );
  const subjects = started.filter((s): s is Subject => 'port' in s);
  let pairs: PairRun[] = [];
  log(`started ${subjects.length} proxies`);
  try {
    for (const subject of subjects) {
      const problem = await verify(subject.port, workload);
      if (problem !== null) {
        subject.run.verifyError = problem;
        log(`${subject.run.proxy}: checked request FAILED: ${problem}`);
      }
    }
    for (const subject of subjects) {
      const warm = await load(subject, workload, timing.warmup, settings.connections);
      subject.run.warmupErrors = warm.errors;
    }
    log('checked and warmed up');
    for (let round = 1; round <= timing.rounds; round++) {
      // A B C …, then B C … A: every proxy takes every position once in a while.
      const shift = (round - 1) % subjects.length;
      const order = [...subjects.slice(shift), ...subjects.slice(0, shift)];
      for (const subject of order) await measure(subject, workload, round, timing.duration, settings.connections);
    }
    pairs = await runPairs(subjects, workload, timing, settings.connections);
  } finally {
    await Promise.all(subjects.map((s) => (s.child === null ? undefined : stop(s.child))));
  }
  const runs = started.map((s) => ('port' in s ? s.run : s));
  return { workload: workload.name, timing, connections: settings.connections, runs, pairs };
}

export async function main(argv: string[]): Promise<void> {
  const defaultOut = fileURLToPath(new URL('../RESULTS.md', import.meta.url));
  const settings = parseArgs(argv, defaultOut);
  const loadStart = loadavg()[0]!;
  const upstream = await startChild('upstream', ['upstream']);
  if ('skipped' in upstream) throw new Error('the upstream cannot skip');
  const results: WorkloadRun[] = [];
  try {
    for (const name of settings.workloads) results.push(await runWorkload(workloads[name], settings.timing[name]!, settings, { http: upstream.port, h2c: upstream.h2cPort!, grpc: upstream.grpcPort!, pool: upstream.poolPorts! }));
  } finally {
    await stop(upstream);
  }
  const cpu = cpus();
  const info: RunInfo = {
    date: new Date(startedAt).toISOString().replace(/\.\d+Z$/, 'Z'),
    node: process.version,
    cpu: cpu[0]?.model.trim() ?? 'unknown CPU',
    cores: cpu.length,
    platform: `${process.platform}/${process.arch}`,
    command: settings.command,
    loadStart,
    loadEnd: loadavg()[0]!,
    autocannon: versionOf('autocannon'),
    note: settings.note,
    minutes: (Date.now() - startedAt) / 60_000,
  };
  const markdown = renderReport(info, results);
  console.log(`\n${markdown}`);
  if (settings.out !== null) {
    writeFileSync(settings.out, markdown);
    console.log(`written to ${settings.out}`);
  }
  if (settings.json !== null) writeFileSync(settings.json, `${JSON.stringify({ info, results }, null, 2)}\n`);
}
