// Instructions per request of bench proxies, counted by valgrind's callgrind: the same number on every run of the same
// code, where CPU time on a shared 2-core VM moves by 15–50 % between minutes. For a question the timed harness cannot
// settle (is this 3 % cheaper, where does a row's extra cost go), not a replacement for it: instructions leave out
// cache misses and stalls, which the timed rows include.
//   node benchmarks/instructions.mjs relay,relay-observe [--warm 30000] [--requests 10000] [--top 40] [--connections 10]
//                                     [--cache]
// Needs valgrind (`apt-get install -y valgrind`) and benchmarks/dist (any `pnpm bench` run builds it). Each proxy runs
// alone under callgrind with counting off for `--warm` small GETs (V8 has optimized the hot path by then), on for
// `--requests` more. JavaScript is named through V8's perf map (`--perf-basic-prof`), so the report shows which
// function of which package the instructions ran in. Env OBS_PARTS reaches the proxies as in the harness. `--cache` adds
// callgrind's cache simulation and its first-level misses per request: where two rows' times differ by more than their
// instructions do (each request takes about twice as long under it).
// Under valgrind a proxy runs about 50× slower: with the defaults, about 2 minutes per proxy.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    warm: { type: 'string', default: '30000' },
    requests: { type: 'string', default: '10000' },
    top: { type: 'string', default: '40' },
    connections: { type: 'string', default: '10' },
    cache: { type: 'boolean', default: false },
  },
});
const names = (positionals[0] ?? '').split(',').filter((name) => name !== '');
if (names.length === 0) throw new Error('usage: node benchmarks/instructions.mjs proxyA[,proxyB…] [--warm N] [--requests N] [--top N] [--connections N] [--cache]');
const [warm, requests, top, connections] = ['warm', 'requests', 'top', 'connections'].map((key) => {
  const value = Number(values[key]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${key} must be a positive whole number, got ${values[key]}`);
  return value;
});
try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  throw new Error('valgrind is not installed: apt-get install -y valgrind');
}
const childEntry = fileURLToPath(new URL('./dist/child.js', import.meta.url));
if (!existsSync(childEntry)) throw new Error('benchmarks/dist is missing: run `npx pnpm@12.4.2 bench --quick` once (it builds it)');
const { startChild, stop } = await import('./dist/processes.js');
const dir = mkdtempSync(join(tmpdir(), 'relay-instructions-'));

/** `count` small GETs, `connections` at a time on keep-alive connections; throws on any status but 200. */
async function load(port, count) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  let sent = 0;
  const one = () =>
    new Promise((resolve, reject) => {
      const req = request({ port, host: '127.0.0.1', path: '/small?page=1', agent, headers: { 'user-agent': 'bench' } }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  const worker = async () => {
    while (sent < count) {
      sent++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  agent.destroy();
}

/** Starts `name` under callgrind, counting off; resolves with the process and its port (child.js's ready message). */
function startCounted(name, upstream) {
  const env = { ...process.env, NODE_ENV: 'production' };
  delete env.NODE_OPTIONS;
  const pool = upstream.poolPorts.map((port) => `http://127.0.0.1:${port}`).join(',');
  const args = ['--tool=callgrind', ...(values.cache ? ['--cache-sim=yes'] : []), '--instr-atstart=no', `--callgrind-out-file=${join(dir, `${name}.%p`)}`, '--log-file=/dev/null'];
  args.push(process.execPath, '--perf-basic-prof', childEntry, name, `http://127.0.0.1:${upstream.port}`, 'http', pool);
  // In the scratch folder: --perf-basic-prof also writes V8's isolate log to the working directory.
  const proc = spawn('valgrind', args, { cwd: dir, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready`)));
    proc.on('message', (message) => {
      if (message.type === 'ready') resolve({ proc, port: message.port });
      else reject(new Error(`${name}: ${message.reason ?? message.error}`));
    });
  });
}

/** Self cost per function of a callgrind dump: `[instructions, name]`, JIT code named through the perf map. */
function functionCosts(file, perfMap) {
  const text = execFileSync('callgrind_annotate', ['--show=Ir', '--threshold=100', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const costs = new Map();
  for (const line of text.split('\n')) {
    const match = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (match === null || match[2].includes('PROGRAM TOTALS')) continue;
    const name = functionName(match[2], perfMap);
    costs.set(name, (costs.get(name) ?? 0) + Number(match[1].replaceAll(',', '')));
  }
  return costs;
}

/**
 * Per request, each event of a dump's totals (`Ir`, and with `--cache` the misses: `I1mr` instruction fetches, `D1mr`
 * data reads, `D1mw` data writes at the first level; the simulated last level takes the size the VM reports, so its
 * misses are left out).
 */
function eventTotals(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const fields = (prefix) => lines.find((line) => line.startsWith(prefix)).slice(prefix.length).trim().split(' ');
  const totals = fields('totals:').map(Number);
  return new Map(fields('events:').map((event, index) => [event, totals[index] / requests]));
}

/** `start size name` lines of V8's perf map, sorted by start; a later entry for the same range wins. */
function readPerfMap(file) {
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line, order) => {
      const [start, size, ...name] = line.split(' ');
      return { start: parseInt(start, 16), end: parseInt(start, 16) + parseInt(size, 16), order, name: name.join(' ') };
    });
  return entries.sort((a, b) => a.start - b.start);
}

function lookup(perfMap, address) {
  let low = 0;
  let high = perfMap.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (perfMap[middle].start <= address) low = middle + 1;
    else high = middle;
  }
  let best = null;
  for (let index = low - 1; index >= 0 && index >= low - 64; index--) {
    const entry = perfMap[index];
    if (address < entry.end && (best === null || entry.order > best.order)) best = entry;
  }
  return best?.name.replace(/^(JS|LazyCompile|Function):/, '') ?? 'JIT code (unnamed)';
}

function functionName(raw, perfMap) {
  const jit = /^\?\?\?:0x([0-9a-f]+)/.exec(raw);
  if (jit !== null) return lookup(perfMap, parseInt(jit[1], 16));
  const name = raw.replace(/ \[[^\]]*\]$/, '').replace(/^\?\?\?:/, '').replace(/'\d+$/, '');
  // One bucket each for V8's optimizing compiler and its garbage collector: their cost depends on timing, not on one request.
  if (/::compiler::|::maglev::|turboshaft/i.test(name)) return '[V8 optimizing compiler]';
  if (/Scaveng|Marking|MarkCompact|Sweep|Evacuat|heap::|Heap::|IterateObjectCache|RootVisitor|Pretenuring/.test(name)) return '[V8 garbage collector]';
  return name;
}

/** Where a function's instructions belong in the summary. */
function category(name) {
  if (name.startsWith('[')) return name;
  if (name.startsWith('Builtins_') || name.startsWith('Builtin:') || name.startsWith('RegExp:')) return 'V8 builtins and regexps';
  if (/@opentelemetry/.test(name)) return 'JS: @opentelemetry';
  if (/prom-client/.test(name)) return 'JS: prom-client';
  if (/\/packages\/[a-z-]+\//.test(name)) return `JS: @relay/${/\/packages\/([a-z-]+)\//.exec(name)[1]}`;
  if (/ node:/.test(name)) return 'JS: node internals';
  if (/^\*|^~|^\^|^\+/.test(name) || name.includes('file://') || name.includes('/node_modules/')) return 'JS: other';
  if (name.startsWith('v8::') || name.includes('v8::internal')) return 'V8 runtime (C++)';
  if (name.startsWith('node::') || name.startsWith('uv_') || name.startsWith('llhttp')) return 'node and libuv (C++)';
  return 'other native';
}

/** Instructions per request by function, over `requests` counted after `warm`; the proxy is stopped either way. */
async function measure(name, upstream) {
  const { proc, port } = await startCounted(name, upstream);
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const perfMapFile = `/tmp/perf-${proc.pid}.map`;
  try {
    await load(port, warm);
    execFileSync('callgrind_control', ['--instr=on', String(proc.pid)], { stdio: 'ignore' });
    await load(port, requests);
    execFileSync('callgrind_control', ['--dump', String(proc.pid)], { stdio: 'ignore' });
    const perfMap = readPerfMap(perfMapFile);
    proc.send({ type: 'stop' });
    await exited;
    const dump = join(dir, `${name}.${proc.pid}.1`);
    if (!existsSync(dump)) throw new Error(`no callgrind dump for ${name}`);
    const costs = functionCosts(dump, perfMap);
    for (const [key, value] of costs) costs.set(key, value / requests);
    return { costs, events: eventTotals(dump) };
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    rmSync(perfMapFile, { force: true });
  }
}

function sum(costs) {
  let total = 0;
  for (const value of costs.values()) total += value;
  return total;
}

function byCategory(costs) {
  const totals = new Map();
  for (const [name, value] of costs) totals.set(category(name), (totals.get(category(name)) ?? 0) + value);
  return totals;
}

const format = (value) => Math.round(value).toLocaleString('en-US');

const upstream = await startChild('upstream', ['upstream']);
const results = [];
const events = [];
try {
  for (const name of names) {
    const started = Date.now();
    const measured = await measure(name, upstream);
    results.push(measured.costs);
    events.push(measured.events);
    console.log(`${name}: ${format(sum(results.at(-1)))} instructions per request (${Math.round((Date.now() - started) / 1000)} s)`);
  }
} finally {
  await stop(upstream);
  rmSync(dir, { recursive: true, force: true });
}
const base = results[0];
const categories = [...new Set(results.flatMap((costs) => [...byCategory(costs).keys()]))].sort();
console.log(`\n| instructions per request | ${names.join(' | ')} |\n| --- | ${names.map(() => '---:').join(' | ')} |`);
for (const key of categories) console.log(`| ${key} | ${results.map((costs) => format(byCategory(costs).get(key) ?? 0)).join(' | ')} |`);
console.log(`| **total** | ${results.map((costs) => `**${format(sum(costs))}**`).join(' | ')} |`);
console.log(`| ratio to ${names[0]} | ${results.map((costs) => (sum(costs) / sum(base)).toFixed(3)).join(' | ')} |`);
// The collector's and the compiler's share move by thousands between runs of the same code (when a collection or a
// re-optimization falls in the window): the rest is the work the requests themselves ran, steady to a few hundred.
const work = (costs) => sum(costs) - (costs.get('[V8 garbage collector]') ?? 0) - (costs.get('[V8 optimizing compiler]') ?? 0);
console.log(`| without the collector and the compiler | ${results.map((costs) => format(work(costs))).join(' | ')} |`);
console.log(`| its ratio to ${names[0]} | ${results.map((costs) => (work(costs) / work(base)).toFixed(3)).join(' | ')} |`);
for (let index = 1; index < results.length; index++) {
  const costs = results[index];
  const rows = [...new Set([...base.keys(), ...costs.keys()])].map((key) => [key, (costs.get(key) ?? 0) - (base.get(key) ?? 0)]);
  rows.sort((a, b) => b[1] - a[1]);
  console.log(`\n${names[index]} − ${names[0]}, by function (instructions per request, the ${top} largest):`);
  for (const [key, value] of rows.slice(0, top)) console.log(`${format(value).padStart(8)}  ${key.slice(0, 160)}`);
}
if (values.cache) {
  console.log(`\n| first-level cache misses per request | ${names.join(' | ')} |\n| --- | ${names.map(() => '---:').join(' | ')} |`);
  for (const [event, label] of [['I1mr', 'instruction fetches'], ['D1mr', 'data reads'], ['D1mw', 'data writes']]) {
    const cells = events.map((totals) => `${format(totals.get(event))} (${(totals.get(event) / events[0].get(event)).toFixed(3)})`);
    console.log(`| ${label} | ${cells.join(' | ')} |`);
  }
}
