// Review s37b (gateway --workers rate limits, black box): the real `relay serve --workers 2` with a
// real upstream. The primary's limit store under concurrent requests from both workers (exact
// count, no over-admission, every RateLimit remaining value given once), a worker killed and
// restarted while the counts live in the primary, and the 1 s IPC timeout provoked by stopping the
// primary (SIGSTOP): a worker's request on an open keep-alive connection fails open and is logged.
import { Agent, request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, delay, startUpstream, type Upstream } from '@relay/testkit';
import type { StatusSnapshot } from '../src/index.js';
import { configDir, startBin, type ServingBin } from './bin.js';

const files = configDir();
let upstream: Upstream;
let gateway: ServingBin;
let configFile = '';

interface Answer {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

function get(path: string, agent: Agent | false = false): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(`${gateway.url}${path}`, { agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.setTimeout(20_000, () => req.destroy());
    req.on('error', (error) => resolve({ status: 0, text: String(error), headers: {} }));
    req.end();
  });
}

function remaining(answer: Answer): number | undefined {
  const match = /r=(\d+)/.exec(String(answer.headers['ratelimit'] ?? ''));
  return match === null ? undefined : Number(match[1]);
}

test.before(async () => {
  upstream = await startUpstream((_req, res) => res.end(String(process.pid)));
  const route = (name: string, points: number) => [
    `  - name: ${name}`,
    `    match: { path: /${name} }`,
    `    upstream: ${upstream.url}`,
    `    rateLimit: { points: ${points}, duration: 3600000, key: route }`,
  ];
  const config = (configFile = files.write(
    'workers.yaml',
    ['listen: [{ host: 127.0.0.1, port: 0 }]', 'status: { path: /_relay/status }', 'routes:', ...route('burst', 10), ...route('crash', 5), ...route('stuck', 1000),
      '  - name: pool',
      '    match: { path: /pool }',
      `    upstream: [${upstream.url}, http://127.0.0.1:${await closedPort()}]`,
      '    balance:',
      '      healthCheck: { path: /health, interval: 100, unhealthyThreshold: 1, healthyThreshold: 1 }',
      '',
    ].join('\n'),
  ));
  gateway = await startBin(['serve', config, '--workers', '2'], { listeningCount: 2 });
});

test.after(async () => {
  try {
    gateway?.child.kill('SIGCONT');
  } catch {}
  await gateway?.stop('SIGTERM');
  await upstream.close();
  files.cleanup();
});

test('30 requests at once over both workers, limit 10 (key: route): exactly 10 reach the upstream, and the RateLimit remaining values 9…0 are each given once (no token handed out twice)', async () => {
  // docs/gateway.md "Workers": "points: 10 lets 10 requests through whichever workers serve them"; nginx's
  // limit_req zone is shared memory for all workers, so concurrency across workers does not over-admit.
  const traffic = () => upstream.requests.filter((seen) => seen.url !== '/health').length;
  const before = traffic();
  const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => get(`/burst/${i}`)));
  const statuses = answers.map((answer) => answer.status);
  assert.ok(statuses.every((status) => status === 200 || status === 429), `${statuses}`);
  const admitted = answers.filter((answer) => answer.status === 200);
  assert.is(admitted.length, 10, `${admitted.length} admitted: ${JSON.stringify(answers.slice(0, 3))}`);
  assert.is(traffic() - before, 10);
  assert.equal(admitted.map(remaining).sort((x, y) => x! - y!), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // and the 429s carry Retry-After, as one process's do
  for (const answer of answers.filter((each) => each.status === 429)) assert.ok(answer.headers['retry-after'] !== undefined, JSON.stringify(answer.headers));
});

test('a worker killed mid-quota is restarted and the quota goes on where it was (the counts live in the primary)', async () => {
  // docs/gateway.md: "a restarted worker finds the counts where they were".
  const first: number[] = [];
  for (let i = 0; i < 3; i++) first.push((await get(`/crash/${i}`)).status);
  assert.equal(first, [200, 200, 200]);
  const status = JSON.parse((await get('/_relay/status.json')).text) as StatusSnapshot & { workers: Array<{ pid: number }> };
  const victim = status.workers[0]!.pid;
  process.kill(victim, 'SIGKILL');
  // wait for the replacement to listen
  await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg === 'listening').length >= 3, 60_000);
  const after: number[] = [];
  for (let i = 0; i < 6; i++) after.push((await get(`/crash/after-${i}`)).status);
  assert.equal(after, [200, 200, 429, 429, 429, 429]);
});

test('the status JSON and /metrics of a pool under --workers: each target once, the dead one unhealthy, in-flight summed; pool gauges 2 targets, 1 up, no address', async () => {
  // docs/gateway.md "Several upstreams" and "Workers": a pool's target "out if out for any worker"; the gauges never labelled by address.
  await delay(800);
  const status = JSON.parse((await get('/_relay/status.json')).text) as StatusSnapshot & { workers: unknown[]; partial: boolean };
  assert.is(status.workers.length, 2);
  assert.is(status.partial, false);
  const pool = status.routes.find((route) => route.name === 'pool')!;
  assert.equal(
    pool.targets.map((target) => [target.url === upstream.url, target.health, target.ejected, target.inFlight]),
    [
      [true, 'healthy', false, 0],
      [false, 'unhealthy', false, 0],
    ],
  );
  for (let i = 0; i < 4; i++) assert.is((await get('/pool/x')).status, 200);
  const metrics = (await get('/metrics')).text;
  assert.match(metrics, /relay_gateway_pool_targets\{route="pool"\} 2\n/);
  assert.match(metrics, /relay_gateway_pool_targets_up\{route="pool"\} 1\n/);
  assert.not.ok(metrics.includes(`:${upstream.port}`), 'an address in /metrics');
});

test('the primary stopped (SIGSTOP): a request on a worker\'s open keep-alive connection is answered after the 1 s IPC timeout (fails open) and the worker logs it; after SIGCONT the limit counts again', async () => {
  // docs/gateway.md: "If the primary does not answer within 1 s, the limit fails open (the request goes
  // through and the worker logs it), as a single process does when its store fails."
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const primary = gateway.child.pid!;
  try {
    const warm = await get('/stuck/warm', agent);
    assert.is(warm.status, 200);
    const logsBefore = gateway.logs.length;
    process.kill(primary, 'SIGSTOP');
    const started = Date.now();
    let answer: Answer;
    try {
      answer = await get('/stuck/while-stopped', agent);
    } finally {
      process.kill(primary, 'SIGCONT');
    }
    const took = Date.now() - started;
    assert.is(answer.status, 200, `${answer.status} ${answer.text}`);
    assert.ok(took >= 800 && took < 6_000, `answered after ${took} ms`);
    await delay(300);
    const logged = gateway.logs.slice(logsBefore).filter((line) => line.level !== 'info' || /limit|primary|store/i.test(line.msg));
    assert.ok(
      logged.some((line) => /primary|store|limit/i.test(JSON.stringify(line))),
      `no log line said the limit failed open: ${JSON.stringify(gateway.logs.slice(logsBefore))}`,
    );
    const later = await get('/stuck/later', agent);
    assert.is(later.status, 200);
    assert.ok(remaining(later) !== undefined && remaining(later)! <= 997, `remaining ${remaining(later)}`);
  } finally {
    agent.destroy();
  }
});

test('a reload whose balance section only balance() refuses (hashKey without strategy: hash) is refused by the primary too: a worker killed afterwards comes back with the serving config', async () => {
  // docs/gateway.md "Workers": the primary "restarts a worker that dies ... with the config that is serving (a YAML or JSON
  // file's text as last validated, so an edit the primary refused never reaches it)". `relay check` and every worker refuse
  // this config (balance.test.ts: "balance: hashKey needs strategy: 'hash'"), but the primary validates with the schema only,
  // takes the text as serving and hands it to the restarted worker, which cannot start.
  const { readFileSync, writeFileSync } = await import('node:fs');
  const good = readFileSync(configFile, 'utf8');
  const bad = good.replace('routes:\n', `routes:\n  - name: pooled\n    match: { path: /pooled }\n    upstream: [${upstream.url}, http://127.0.0.1:9]\n    balance: { hashKey: { header: x-user } }\n`);
  const refusedBefore = gateway.logs.filter((line) => line.msg.startsWith('config reload refused')).length;
  writeFileSync(configFile, bad);
  // the workers refuse it (each logs the refusal with its line)
  await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg.startsWith('config reload refused')).length >= refusedBefore + 1, 20_000);
  await delay(1_000);
  const listeningBefore = gateway.logs.filter((line) => line.msg === 'listening').length;
  const status = JSON.parse((await get('/_relay/status.json')).text) as StatusSnapshot & { workers: Array<{ pid: number }> };
  process.kill(status.workers[0]!.pid, 'SIGKILL');
  try {
    await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg === 'listening').length > listeningBefore, 20_000);
  } catch {
    const died = gateway.logs.filter((line) => line.msg.startsWith('worker died') || line.msg.includes('refused') || line.level === 'error');
    assert.unreachable(`the killed worker never came back: ${JSON.stringify(died.slice(-4)).slice(0, 1500)}`);
  } finally {
    writeFileSync(configFile, good);
  }
});

test.run();
