// Two bench proxies in alternating windows (A B, B A, …) on the small GET: each one's median CPU per
// request, the median of the per-pair CPU and req/s ratios, and user/system CPU from /proc. For a
// question the full run answers too slowly: is this change cheaper, which part of a row costs?
//   node benchmarks/pair.mjs relay,relay-observe [pairs=8] [seconds=4]
// Needs benchmarks/dist (any `pnpm bench` run builds it). RELAY_BENCH_RATE=N offers both the same N
// requests/s; OBS_PARTS and RELAY_BENCH_PROXY_ARGS reach the proxies as in the harness. Minor page faults
// per request come from /proc; RELAY_BENCH_ALLOC=FILE adds bytes allocated per request (V8's sampling heap
// profiler in each proxy, see src/child.ts; the sampler's own cost makes those windows' CPU meaningless).
import { readFileSync } from 'node:fs';
import { begin, end, startChild, stop } from './dist/processes.js';
import { httpLoad } from './dist/load.js';
import { workloads } from './dist/settings.js';

const [a, b] = (process.argv[2] ?? '').split(',');
if (a === undefined || b === undefined) throw new Error('usage: node benchmarks/pair.mjs proxyA,proxyB [pairs] [seconds]');
const pairs = Number(process.argv[3] ?? 8);
const seconds = Number(process.argv[4] ?? 4);
const workload = workloads['small-get'];

/** User and system clock ticks (1/100 s) and minor page faults of a process so far. */
function ticks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(fields[11]), system: Number(fields[12]), faults: Number(fields[7]) };
}

function median(values) {
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** One window on `child`: CPU µs per request (process.cpuUsage), req/s, and user/system µs per request. */
async function window(child) {
  const before = ticks(child.process.pid);
  await begin(child);
  const load = await httpLoad(child.port, workload, seconds, 50);
  const usage = await end(child);
  const after = ticks(child.process.pid);
  const per = (n) => (n * 10_000) / load.completed;
  return { cpu: usage.cpuMicros / load.completed, rate: load.rate, user: per(after.user - before.user), system: per(after.system - before.system), faults: (after.faults - before.faults) / load.completed, allocated: (usage.allocatedBytes ?? 0) / load.completed };
}

const upstream = await startChild('upstream', ['upstream']);
const pool = upstream.poolPorts.map((port) => `http://127.0.0.1:${port}`).join(',');
const children = [];
for (const name of [a, b]) children.push(await startChild(name, [name, `http://127.0.0.1:${upstream.port}`, 'http', pool]));
for (const child of children) await httpLoad(child.port, workload, 3, 50);
const results = [[], []];
for (let index = 0; index < pairs; index++) {
  const order = index % 2 === 0 ? [0, 1] : [1, 0];
  for (const side of order) results[side].push(await window(children[side]));
  const [x, y] = [results[0].at(-1), results[1].at(-1)];
  console.log(`${index}: ${a} ${x.cpu.toFixed(1)} µs ${x.rate.toFixed(0)}/s, ${b} ${y.cpu.toFixed(1)} µs ${y.rate.toFixed(0)}/s, CPU ratio ${(y.cpu / x.cpu).toFixed(3)}`);
}
const keys = ['cpu µs', 'user µs', 'system µs', 'faults', ...(process.env.RELAY_BENCH_ALLOC ? ['allocated B'] : [])];
const summary = (side) => keys.map((key) => `${key} ${median(results[side].map((w) => w[key.split(' ')[0]])).toFixed(key === 'faults' ? 3 : 1)}`).join(', ');
console.log(`per request: ${a}: ${summary(0)}; ${b}: ${summary(1)}`);
console.log(`${b} / ${a}: CPU ratio ${median(results[1].map((w, i) => w.cpu / results[0][i].cpu)).toFixed(3)}, req/s ratio ${median(results[1].map((w, i) => w.rate / results[0][i].rate)).toFixed(3)} (medians over ${pairs} pairs)`);
for (const child of [...children, upstream]) await stop(child);
