// `pnpm test:ws-conformance [--full]`: the Autobahn|Testsuite fuzzing client against a `ws` echo
// server directly, through a transparent relay and through a relay with a pass-through message
// hook, case by case. Fails when a case's result through a relay differs from the direct one
// (the hooked relay is compared on sections 1–10: compression is negotiated per link there).
//
// Default (CI): sections 1–7 and 10 plus a compression subset (12.1.1–3, 13.1.1–3), a few minutes.
// --full: every case (1–7, 9, 10, 12, 13); about an hour per target for 12 and 13 on 2 cores.
// --cases 9.*,12.2.*: those cases instead. The wstest log is written to the work directory.
// Needs Python 2.7 (PyPy): `setup-python2.sh` beside `wstest` installs it when missing (root, apt).
import { spawnSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocketServer } from 'ws';
import { createRelay, type Relay } from '@relay/core';
import { websocket, type WebSocketOptions } from '@relay/ws';

const root = resolve(new URL('../..', import.meta.url).pathname);
const full = process.argv.includes('--full');
const casesArg = process.argv.indexOf('--cases');
const chosenCases = casesArg > 0 ? process.argv[casesArg + 1]!.split(',') : null;
const timeLimitMs = (full || chosenCases !== null ? 360 : 45) * 60_000;
const ciCases = ['1.*', '2.*', '3.*', '4.*', '5.*', '6.*', '7.*', '10.*', '12.1.1', '12.1.2', '12.1.3', '13.1.1', '13.1.2', '13.1.3'];

/** `../shared/autobahn` beside the repository, or AUTOBAHN_DIR. */
function autobahnDir(): string {
  const candidates = [process.env.AUTOBAHN_DIR, join(root, '../shared/autobahn'), join(root, '../../shared/autobahn')];
  for (const dir of candidates) if (dir !== undefined && existsSync(join(dir, 'wstest'))) return dir;
  throw new Error('Autobahn|Testsuite not found: set AUTOBAHN_DIR to the folder holding wstest');
}

/** Installs PyPy (Python 2.7) with the suite's `setup-python2.sh` when it is missing. */
function ensurePython2(dir: string): void {
  if (spawnSync('sh', ['-c', 'command -v pypy'], { stdio: 'ignore' }).status === 0) return;
  console.log('PyPy is missing: running setup-python2.sh (needs root and apt)');
  const setup = spawnSync('bash', [join(dir, 'setup-python2.sh')], { stdio: 'inherit' });
  if (setup.status !== 0) throw new Error('setup-python2.sh failed: run it as root, then try again');
}

function listen(server: Server): Promise<number> {
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done((server.address() as AddressInfo).port)));
}

/** The neutral reference upstream: echo, permessage-deflate offered, no fragment limit (see the suite's README). */
async function startEcho(): Promise<{ port: number; close(): void }> {
  const server = createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: true, maxFragments: 0 });
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
  const port = await listen(server);
  return {
    port,
    close: () => {
      for (const ws of wss.clients) ws.terminate();
      server.close();
    },
  };
}

async function startRelay(echoPort: number, options: WebSocketOptions): Promise<{ port: number; relay: Relay; server: Server }> {
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${echoPort}`, websocket: websocket(options) });
  await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  return { port: await listen(server), relay, server };
}

const passThrough = (): undefined => undefined;
const sections = ['OK', 'NON-STRICT', 'FAILED', 'UNIMPLEMENTED', 'INFORMATIONAL'] as const;
type Results = Record<string, Record<string, { behavior: string }>>;

/** Sorts case ids numerically (1.1.10 after 1.1.9). */
function byCase(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** Runs wstest for one target (its spec in `<agent>.json`); resolves with 0, its exit code, or why it stopped. */
function runWstest(dir: string, work: string, agent: string, started: number): Promise<number | string> {
  return new Promise((done) => {
    const child = spawn(join(dir, 'wstest'), ['-m', 'fuzzingclient', '-s', `${agent}.json`], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(createWriteStream(join(work, `${agent}.log`)));
    child.stderr.pipe(process.stderr);
    let runs = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      const before = runs;
      runs += chunk.toString().split('Running test case').length - 1;
      if (Math.floor(runs / 50) > Math.floor(before / 50)) console.log(`  ${agent}: ${runs} cases, ${((Date.now() - started) / 60_000).toFixed(1)} min`);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
    }, timeLimitMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      done(timedOut ? `${agent}: stopped after the ${timeLimitMs / 60_000} min time limit` : (code ?? `${agent}: killed`));
    });
  });
}

async function main(): Promise<number> {
  const dir = autobahnDir();
  ensurePython2(dir);
  const echo = await startEcho();
  const transparent = await startRelay(echo.port, {});
  const hooked = await startRelay(echo.port, { onClientMessage: passThrough, onUpstreamMessage: passThrough, perMessageDeflate: true });
  const work = mkdtempSync(join(tmpdir(), 'relay-autobahn-'));
  const cases = chosenCases ?? (full ? ['*'] : ciCases);
  const targets = [
    { agent: 'direct', url: `ws://127.0.0.1:${echo.port}` },
    { agent: 'relay-transparent', url: `ws://127.0.0.1:${transparent.port}` },
    { agent: 'relay-hook', url: `ws://127.0.0.1:${hooked.port}` },
  ];
  console.log(`wstest -m fuzzingclient, cases ${cases.join(' ')}, one wstest per target in parallel; logs and reports in ${work}`);
  const started = Date.now();
  // The cases mostly wait on the network: one wstest per target runs them side by side.
  const statuses = await Promise.all(
    targets.map(({ agent, url }) => {
      // Compression is negotiated per link by a terminating relay: its 12.x/13.x are not compared.
      const agentCases = cases;
      if (agentCases.length === 0) return Promise.resolve(0);
      const excluded: string[] = [];
      const spec = { outdir: join(work, agent), servers: [{ agent, url }], cases: agentCases, 'exclude-cases': excluded, 'exclude-agent-cases': {} };
      writeFileSync(join(work, `${agent}.json`), JSON.stringify(spec, null, 2));
      return runWstest(dir, work, agent, started);
    }),
  );
  const status = statuses.find((one) => one !== 0) ?? 0;
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  await Promise.all([transparent.relay.shutdown({ timeout: 1000 }), hooked.relay.shutdown({ timeout: 1000 })]);
  transparent.server.close();
  hooked.server.close();
  echo.close();
  if (status !== 0) {
    console.error(`wstest: ${typeof status === 'number' ? `exited with ${status}` : status} after ${minutes} min`);
    return 1;
  }
  const results: Results = {};
  for (const { agent } of targets) {
    const index = join(work, agent, 'index.json');
    if (existsSync(index)) Object.assign(results, JSON.parse(readFileSync(index, 'utf8')) as Results);
    else if (agent !== 'relay-hook' || cases.some((id) => !/^1[23]\./.test(id))) {
      // wstest stopped by a signal exits 0 without a report: no result is a failure, never a pass.
      console.error(`wstest wrote no results for ${agent} (logs in ${work})`);
      return 1;
    }
  }
  const direct = results.direct!;
  const rows: string[] = ['| target | cases | ' + sections.join(' | ') + ' | differs from direct |', '| --- | --- |' + ' --- |'.repeat(sections.length + 1)];
  const differences: string[] = [];
  for (const agent of ['direct', 'relay-transparent', 'relay-hook']) {
    const agentResults = results[agent] ?? {};
    const counts = new Map<string, number>();
    let differing = 0;
    for (const id of Object.keys(agentResults).sort(byCase)) {
      const behavior = agentResults[id]!.behavior;
      counts.set(behavior, (counts.get(behavior) ?? 0) + 1);
      const expected = direct[id]?.behavior;
      if (agent !== 'direct' && behavior !== expected) {
        differing++;
        differences.push(`${agent} ${id}: ${behavior} (direct: ${expected})`);
      }
    }
    rows.push(`| ${agent} | ${Object.keys(agentResults).length} | ${sections.map((name) => counts.get(name) ?? 0).join(' | ')} | ${differing} |`);
  }
  console.log(`\nAutobahn|Testsuite fuzzingclient, ${minutes} min (node ${process.version}):\n`);
  console.log(rows.join('\n'));
  if (differences.length > 0) {
    console.log(`\n${differences.length} case(s) differ from direct (reports in ${work}):`);
    for (const line of differences) console.log(`  ${line}`);
    return 1;
  }
  rmSync(work, { recursive: true, force: true });
  console.log('\nevery case through the relays gave the direct result');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
