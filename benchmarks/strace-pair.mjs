// Syscalls per request of two bench proxies: `strace -c -f` on each proxy process over one load window
// (after a warm-up), with the request count, to tell "more syscalls" from "dearer ones" between rows.
//   RELAY_BENCH_RATE=4000 node benchmarks/strace-pair.mjs
// Needs strace (apt-get install -y strace) and benchmarks/dist (any `pnpm bench` run builds it); rows: relay, relay-observe.
import { spawn } from 'node:child_process';
import { startChild, stop } from './dist/processes.js';
import { httpLoad } from './dist/load.js';
import { workloads } from './dist/settings.js';
const workload = workloads['small-get'];
const upstream = await startChild('upstream', ['upstream']);
const pool = upstream.poolPorts.map((port) => `http://127.0.0.1:${port}`).join(',');
for (const name of ['relay', 'relay-observe']) {
  const child = await startChild(name, [name, `http://127.0.0.1:${upstream.port}`, 'http', pool]);
  await httpLoad(child.port, workload, 4, 50);
  const st = spawn('strace', ['-c', '-f', '-p', String(child.process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = ''; st.stderr.on('data', (d) => (out += d));
  await new Promise((r) => setTimeout(r, 500));
  const load = await httpLoad(child.port, workload, 3, 50);
  st.kill('SIGINT'); await new Promise((r) => st.on('close', r));
  console.log(name, load.completed, 'requests');
  console.log(out.split('\n').filter((l) => !l.startsWith('strace:')).slice(0, 16).join('\n'));
  await stop(child);
}
await stop(upstream);
