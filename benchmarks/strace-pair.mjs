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
