// `relay serve --workers 2`: two processes answer on one port, a killed worker is restarted,
// SIGHUP reaches every worker, SIGTERM drains them all and the primary exits 0.
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream, waitFor, type Upstream } from '@relay/testkit';
import type { StatusSnapshot } from '../src/index.js';
import { configDir, runBin, startBin, type ServingBin } from './bin.js';

const files = configDir();
let upstream: Upstream;
let gateway: ServingBin;

/** GET on a new connection each time (agent: false), so the primary hands each to the next worker. */
function get(path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${gateway.url}${path}`, { agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function status(): Promise<StatusSnapshot> {
  return JSON.parse((await get('/_relay/status.json')).text) as StatusSnapshot;
}

async function statusPid(): Promise<number> {
  return (await status()).pid;
}

async function pidsAnswering(attempts: number): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < attempts && pids.size < 2; i++) pids.add(await statusPid());
  return pids;
}

test.before(async () => {
  upstream = await startUpstream((_req, res) => res.end('ok'));
  const config = files.write(
    'gateway.yaml',
    ['listen: [{ host: 127.0.0.1, port: 0 }]', 'status: { path: /_relay/status }', 'routes:', '  - name: all', `    upstream: ${upstream.url}`, ''].join('\n'),
  );
  gateway = await startBin(['serve', config, '--workers', '2'], { listeningCount: 2 });
});

test.after(async () => {
  await gateway?.stop('SIGKILL');
  await upstream.close();
  files.cleanup();
});

test('two workers answer on the same port (their pids differ)', async () => {
  const listening = gateway.logs.filter((line) => line.msg === 'listening');
  assert.is(listening.length, 2);
  assert.is(listening[0]!.port, listening[1]!.port);
  assert.is.not(listening[0]!.pid, listening[1]!.pid);
  const pids = await pidsAnswering(40);
  assert.is(pids.size, 2, `answered by ${[...pids].join(', ')}`);
  const agent = new Agent();
  const body = await new Promise<string>((resolve) => {
    request(`${gateway.url}/x`, { agent }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk));
      res.on('end', () => resolve(text));
    }).end();
  });
  assert.is(body, 'ok');
  agent.destroy();
});

test('the status JSON and /metrics count the requests of both workers', async () => {
  const sent = 40;
  for (let i = 0; i < sent; i++) assert.is((await get(`/x/${i}`)).status, 200);
  const total = sent + 1; // and the one of the test before
  const snapshot = await status();
  assert.is(snapshot.workers.length, 2);
  assert.is(snapshot.partial, false);
  for (const worker of snapshot.workers) assert.ok(worker.requestsLastMinute > 0, `worker ${worker.pid} served some of them`);
  assert.is(snapshot.workers[0]!.requestsLastMinute + snapshot.workers[1]!.requestsLastMinute, total);
  const route = snapshot.routes.find((entry) => entry.name === 'all')!;
  assert.is(route.requestsLastMinute, total);
  assert.is(route.targets[0]!.health, 'healthy');
  for (let i = 0; i < 4; i++) {
    // Whichever worker answers, the figures are the same: the whole gateway's.
    const again = await status();
    assert.is(again.routes[0]!.requestsLastMinute, total);
    const metrics = await get('/metrics');
    assert.is(metrics.status, 200);
    assert.match(metrics.text, `relay_gateway_requests_total{route="all"} ${total}\n`);
    assert.match(metrics.text, 'relay_gateway_target_up{route="all"} 1\n');
  }
});

test('a worker that dies is restarted (the first restart after 100 ms, as the README says)', async () => {
  const victim = gateway.logs.find((line) => line.msg === 'listening')!.pid;
  process.kill(victim, 'SIGKILL');
  const died = await gateway.waitForLog((line) => line.msg === 'worker died: restarting it');
  assert.is(died.restartIn, 100);
  assert.ok(await waitFor(() => gateway.logs.filter((line) => line.msg === 'listening').length === 3, 20_000), 'a third worker listens');
  const pids = await pidsAnswering(40);
  assert.is(pids.size, 2);
  assert.not.ok(pids.has(victim));
});

test('SIGHUP on the primary reloads every worker', async () => {
  gateway.child.kill('SIGHUP');
  assert.ok(await waitFor(() => gateway.logs.filter((line) => line.msg === 'config reloaded').length === 2, 20_000), 'two workers reloaded');
});

test('after a refused reload, a worker that dies is restarted with the config that is serving, not the refused file', async () => {
  const file = `${files.dir}/gateway.yaml`;
  const serving = readFileSync(file, 'utf8');
  writeFileSync(file, serving.replace('    upstream:', '    upstreem:'));
  gateway.child.kill('SIGHUP');
  await gateway.waitForLog((line) => line.msg === 'config reload refused: the previous config keeps serving');
  const listened = gateway.logs.filter((line) => line.msg === 'listening').length;
  const victim = gateway.logs.filter((line) => line.msg === 'listening').at(-1)!.pid;
  process.kill(victim, 'SIGKILL');
  assert.ok(await waitFor(() => gateway.logs.filter((line) => line.msg === 'listening').length === listened + 1, 20_000), 'a new worker listens');
  const pids = await pidsAnswering(40);
  assert.is(pids.size, 2);
  assert.not.ok(pids.has(victim));
  assert.is((await get('/x')).status, 200);
  writeFileSync(file, serving);
});

test('workers that cannot listen (port in use): the primary stops with exit code 1 instead of restarting them forever', async () => {
  const config = files.write('busy.yaml', ['listen: [{ host: 127.0.0.1, port: 0 }]', 'routes:', `  - upstream: ${upstream.url}`, ''].join('\n'));
  const result = await runBin(['serve', config, '--workers', '2', '--port', String(gateway.port)], { timeoutMs: 60_000 });
  assert.is(result.code, 1);
  assert.match(result.stdout, /a worker failed before any listened: stopping/);
  assert.match(result.stdout, /EADDRINUSE/);
});

test('SIGTERM: the workers drain and stop, the primary exits 0', async () => {
  const code = await gateway.stop('SIGTERM');
  assert.is(code, 0);
  assert.is(gateway.logs.filter((line) => line.msg === 'stopped').length, 3, 'two workers and the primary');
});

test.run();
