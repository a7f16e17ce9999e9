// Review s37b (gateway balance, black box): a route listing several upstreams with `balance:`, run
// as an operator would, with the real `relay serve` bin and real upstreams: `healthCheck.protocol`,
// reloads (file save and SIGHUP) while traffic flows, a reload that changes only the weights while
// a target is down, a refused balance section, health-check timers and sockets across many reloads
// (the process's open fds and the checks per second), SIGTERM with a pool, the status JSON and
// /metrics, and error bodies without addresses.
import { readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, delay, startUpstream, tlsFixture, type Upstream } from '@relay/testkit';
import { configDir, runBin, startBin, type ServingBin } from './bin.js';

const files = configDir();

/** An upstream that answers with its name; `/health` answers 200 while `up`, else 503; `/slow` waits 1.5 s. */
interface Named extends Upstream {
  up: boolean;
  checks(): number;
}

async function named(name: string): Promise<Named> {
  const state = { up: true };
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/health') {
      res.statusCode = state.up ? 200 : 503;
      return void res.end(state.up ? 'ok' : 'down');
    }
    if (req.url?.startsWith('/v1/slow')) return void setTimeout(() => res.end(name), 1_500);
    // a target that is down answers its traffic 503 too (a replica failing its dependencies)
    if (!state.up) res.statusCode = 503;
    res.end(state.up ? name : `${name} down`);
  });
  const result = upstream as Named;
  Object.defineProperty(result, 'up', { get: () => state.up, set: (value: boolean) => (state.up = value) });
  result.checks = () => upstream.requests.filter((seen) => seen.url === '/health').length;
  return result;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

function get(url: string, options: { fresh?: boolean } = {}): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve) => {
    const req = request(url, { agent: options.fresh ? false : agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.setTimeout(15_000, () => req.destroy());
    req.on('error', (error) => resolve({ status: 0, text: String(error), headers: {} }));
    req.end();
  });
}

const fastChecks = '      healthCheck: { path: /health, interval: 100, timeout: 500, unhealthyThreshold: 1, healthyThreshold: 1 }';

function config(targets: string[], extra: string[] = [], balance: string[] = [], checks = fastChecks): string {
  return [
    'listen: [{ host: 127.0.0.1, port: 0 }]',
    'status: { path: /_relay/status }',
    'timeouts: { shutdown: 5000 }',
    'routes:',
    '  - name: api',
    '    match: { path: /api }',
    '    upstream:',
    ...targets.map((target) => `      - ${target}`),
    '    upstreamPrefix: /v1',
    ...extra,
    '    balance:',
    checks,
    ...balance,
    '',
  ].join('\n');
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function reloaded(gateway: ServingBin, count: number): Promise<void> {
  await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg === 'config reloaded').length >= count, 20_000);
}

test.after(() => {
  agent.destroy();
  files.cleanup();
});

test('balance.healthCheck.protocol: http2 is taken, as balance() takes it (docs/gateway.md: "The balance key takes balance()\'s options but its targets")', async () => {
  // @relay/balance 469f19a: healthCheck.protocol 'http2' checks h2c and h2 targets over node:http2.
  // The gateway's route schema (feature-balance.ts healthCheckSchema, .strict()) has no `protocol`.
  const text = [
    'listen: [{ host: 127.0.0.1, port: 0 }]',
    'routes:',
    '  - name: grpc',
    '    upstream: [http://127.0.0.1:50051, http://127.0.0.1:50052]',
    '    balance:',
    '      healthCheck: { path: /health, protocol: http2 }',
    '',
  ].join('\n');
  const file = files.write('h2-check.yaml', text);
  const checked = await runBin(['check', file]);
  assert.is(checked.code, 0, `relay check refused healthCheck.protocol: ${checked.stdout}${checked.stderr}`);
  // and protocol: http1 (the default, written out) is no error either
  const http1 = await runBin(['check', files.write('h1-check.yaml', text.replace('http2', 'http1'))]);
  assert.is(http1.code, 0, `${http1.stdout}${http1.stderr}`);
  // a protocol balance() does not know is still refused, naming the key
  const spdy = await runBin(['check', files.write('spdy-check.yaml', text.replace('http2', 'spdy'))]);
  assert.is.not(spdy.code, 0);
  assert.ok(`${spdy.stdout}${spdy.stderr}`.includes('protocol'), spdy.stdout);
});

test('a reload that changes only the weights while one target is down: no client request goes to the down target (its known health carries over, or the new pool waits for its first check, as Envoy warms a cluster)', async () => {
  // docs/gateway.md "Hot reload": "A route's request counts and its target's health carry over"; and
  // "its health checks start with the route, before it takes traffic". Envoy: a cluster with active
  // health checking is warmed (first check of each host) before it takes traffic; nginx plus keeps
  // `health_check ... persistent` state across reloads. Here the new pool starts every target healthy.
  const a = await named('a');
  const b = await named('b');
  // checks every 500 ms, out after 2 failures (the defaults are 5 s and 3: a 10 s window after each reload)
  const checks = '      healthCheck: { path: /health, interval: 500, timeout: 500, unhealthyThreshold: 2, healthyThreshold: 1 }';
  const file = files.write('weights-down.yaml', config([a.url, b.url], [], [], checks));
  const gateway = await startBin(['serve', file]);
  try {
    b.up = false;
    // the running pool takes b out
    let out = false;
    for (let i = 0; i < 50 && !out; i++) {
      const status = JSON.parse((await get(`${gateway.url}/_relay/status.json`)).text) as { routes: Array<{ targets: Array<{ health: string }> }> };
      out = status.routes[0]!.targets[1]!.health === 'unhealthy';
      if (!out) await delay(100);
    }
    assert.ok(out, 'b not taken out before the reload');
    for (let i = 0; i < 6; i++) assert.is((await get(`${gateway.url}/api/x`)).text, 'a');
    // only the weights change
    files.write('weights-down.yaml', config([a.url, `{ url: "${b.url}", weight: 2 }`], [], [], checks));
    await reloaded(gateway, 1);
    const answers: string[] = [];
    for (let i = 0; i < 12; i++) {
      const response = await get(`${gateway.url}/api/x`);
      answers.push(`${response.status}:${response.text.slice(0, 40)}`);
    }
    assert.ok(
      answers.every((answer) => answer === '200:a'),
      `right after the reload, requests went to the down target: ${answers.join(' | ')}`,
    );
  } finally {
    await gateway.stop('SIGTERM');
    await a.close();
    await b.close();
  }
});

test('hot reloads (file saves and SIGHUP, weights only) in the middle of traffic: every request answered 200; after 20 reloads the old pools\' checks stopped and no fd leaked', async () => {
  // docs/gateway.md: the old pool's "checks stop when those relays shut down"; balance README: stop() closes
  // the checker's agents. nginx reloads leave no old worker's health probes behind.
  const a = await named('a');
  const b = await named('b');
  const file = files.write('many-reloads.yaml', config([a.url, b.url]));
  const gateway = await startBin(['serve', file]);
  const pid = gateway.child.pid!;
  try {
    for (let i = 0; i < 5; i++) await get(`${gateway.url}/api/warm`);
    await delay(500);
    const fdsBefore = openFds(pid);
    let running = true;
    const failures: string[] = [];
    let served = 0;
    const traffic = (async () => {
      while (running) {
        const response = await get(`${gateway.url}/api/x`);
        if (response.status !== 200) failures.push(`${response.status} ${response.text.slice(0, 80)}`);
        served++;
      }
    })();
    for (let i = 1; i <= 20; i++) {
      if (i % 2 === 0) gateway.child.kill('SIGHUP');
      else files.write('many-reloads.yaml', config([a.url, `{ url: "${b.url}", weight: ${1 + (i % 4)} }`]));
      await reloaded(gateway, i);
      await delay(60);
    }
    running = false;
    await traffic;
    assert.equal(failures, [], `failed during reloads (${served} served)`);
    // the old relays retire once idle (200 ms polls) and their pools stop
    await delay(1_500);
    const checksA = a.checks();
    await delay(1_000);
    const perSecond = a.checks() - checksA;
    // one pool checks a every 100 ms: about 10 a second; 21 pools would be about 210
    assert.ok(perSecond <= 16, `${perSecond} health checks of one target in 1 s with an interval of 100 ms: old pools still check`);
    const fdsAfter = openFds(pid);
    assert.ok(fdsAfter - fdsBefore <= 6, `open fds ${fdsBefore} before 20 reloads, ${fdsAfter} after`);
    // the status JSON: the route's pool, both targets, no stale generations
    const status = JSON.parse((await get(`${gateway.url}/_relay/status.json`)).text) as {
      generation: number;
      routes: Array<{ name: string; targets: Array<{ url: string; health: string; ejected: boolean; inFlight: number }> }>;
    };
    assert.is(status.generation, 21);
    assert.is(status.routes.length, 1);
    assert.equal(status.routes[0]!.targets.map((target) => [target.url, target.health, target.ejected, target.inFlight]), [
      [a.url, 'healthy', false, 0],
      [b.url, 'healthy', false, 0],
    ]);
  } finally {
    await gateway.stop('SIGTERM');
    await a.close();
    await b.close();
  }
});

test('a reload with an invalid balance section is refused with its line; the old pool keeps serving and checking', async () => {
  // docs/gateway.md "Hot reload": "A config that fails validation is refused: the error is logged ... and nothing changes".
  const a = await named('a');
  const b = await named('b');
  const file = files.write('bad-balance.yaml', config([a.url, b.url]));
  const gateway = await startBin(['serve', file]);
  try {
    await delay(500);
    files.write('bad-balance.yaml', config([a.url, b.url], [], ['      strategy: fastest']));
    const refused = await gateway.waitForLog((line) => line.msg.startsWith('config reload refused'), 20_000);
    const detail = JSON.stringify(refused);
    assert.ok(/bad-balance\.yaml:13:/.test(detail), `the refusal names no line: ${detail}`);
    assert.ok(detail.includes('strategy'), detail);
    // a balance() refusal that only the factory sees (hash with a bad key type) is refused too
    files.write('bad-balance.yaml', config([a.url, b.url], [], ['      circuit: { maxRequests: 0 }']));
    await gateway.waitForLog(() => gateway.logs.filter((line) => line.msg.startsWith('config reload refused')).length >= 2, 20_000);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const response = await get(`${gateway.url}/api/x`);
      assert.is(response.status, 200);
      seen.add(response.text);
    }
    assert.equal([...seen].sort(), ['a', 'b']);
    const before = a.checks();
    await delay(600);
    assert.ok(a.checks() - before >= 2, 'the serving pool stopped checking after a refused reload');
  } finally {
    await gateway.stop('SIGTERM');
    await a.close();
    await b.close();
  }
});

test('SIGTERM with a pool: a slow request in flight finishes 200, the process exits 0; every target down gives an answer naming no address', async () => {
  // docs/gateway.md: checks stop "as the current pool's do at SIGTERM"; "A client whose every target fails gets the relay's own answer ... which names no address".
  const a = await named('a');
  const b = await named('b');
  const dead = [await closedPort(), await closedPort()];
  const text = config([a.url, b.url]).replace(
    'routes:\n',
    `routes:\n  - name: dead\n    match: { path: /dead }\n    upstream: [http://127.0.0.1:${dead[0]}, http://127.0.0.1:${dead[1]}]\n`,
  );
  const file = files.write('drain.yaml', text);
  const gateway = await startBin(['serve', file]);
  try {
    const down = await get(`${gateway.url}/dead/x`);
    assert.ok(down.status >= 500, `${down.status}`);
    for (const port of dead) {
      assert.not.ok(down.text.includes(String(port)), `the error body names an address: ${down.text}`);
      for (const value of Object.values(down.headers)) assert.not.ok(String(value).includes(String(port)), `a header names an address: ${value}`);
    }
    const metrics = (await get(`${gateway.url}/metrics`)).text;
    assert.match(metrics, /relay_gateway_pool_targets\{route="dead"\} 2/);
    assert.match(metrics, /relay_gateway_pool_targets\{route="api"\} 2/);
    for (const port of [...dead, a.port, b.port]) assert.not.ok(metrics.includes(`:${port}`), `/metrics names an address`);
    const slow = get(`${gateway.url}/api/slow`, { fresh: true });
    await delay(300);
    const started = Date.now();
    gateway.child.kill('SIGTERM');
    const answer = await slow;
    assert.is(answer.status, 200);
    const code = await gateway.stop('SIGTERM');
    assert.is(code, 0);
    assert.ok(Date.now() - started < 5_000);
  } finally {
    await gateway.stop('SIGKILL');
    await a.close();
    await b.close();
  }
});

test('a pool target that fails does not mark another route\'s upstream unhealthy: a route sending to a alone shows a as it is, not the failures of the pool\'s other target', async () => {
  // docs/gateway.md "The status page": each route with "its upstream target and that target's health (the last
  // attempt's outcome)"; relay_gateway_target_up: "1 when the last attempt to the route's target got an answer".
  // Here the pool route [a, dead] records its failed attempts to `dead` against a's shared TargetHealth (keyed by the
  // first target's URL), so the route `direct` (upstream a, never failed) is shown unhealthy with ERR_UPSTREAM_UNREACHABLE.
  const a = await named('a');
  const dead = await closedPort();
  const text = [
    'listen: [{ host: 127.0.0.1, port: 0 }]',
    'status: { path: /_relay/status }',
    'routes:',
    '  - name: direct',
    '    match: { path: /direct }',
    `    upstream: ${a.url}`,
    '  - name: api',
    '    match: { path: /api }',
    `    upstream: [${a.url}, http://127.0.0.1:${dead}]`,
    '    balance: { outlier: false }',
    '',
  ].join('\n');
  const gateway = await startBin(['serve', files.write('shared-health.yaml', text)]);
  try {
    assert.is((await get(`${gateway.url}/direct/x`)).status, 200);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await get(`${gateway.url}/api/x`, { fresh: true })).status);
    assert.ok(statuses.includes(502), `the dead target was never tried: ${statuses}`);
    // the last attempt of the pool went to the dead target
    if (statuses.at(-1) !== 502) statuses.push((await get(`${gateway.url}/api/x`, { fresh: true })).status);
    const status = JSON.parse((await get(`${gateway.url}/_relay/status.json`)).text) as {
      routes: Array<{ name: string; targets: Array<{ url: string; health: string; lastError: string | null }> }>;
    };
    const direct = status.routes.find((route) => route.name === 'direct')!;
    assert.equal(
      direct.targets.map((target) => [target.url, target.health, target.lastError]),
      [[a.url, 'healthy', null]],
      'the route direct shows a with the failures of the pool\'s other target',
    );
    const metrics = (await get(`${gateway.url}/metrics`)).text;
    assert.match(metrics, /relay_gateway_target_up\{route="direct"\} 1/, 'relay_gateway_target_up{route="direct"} is 0 though a answers every request');
  } finally {
    await gateway.stop('SIGTERM');
    await a.close();
  }
});

test('regression: circuit.maxRequests 1 on a pool of one: a second request while one is in progress gets 503 ERR_CIRCUIT_OPEN naming no address; the first finishes 200', async () => {
  // docs/gateway.md: "503 ERR_CIRCUIT_OPEN / ERR_NO_TARGET, which names no address" (Envoy: max_requests overflow is a local 503).
  const a = await named('a');
  const text = [
    'listen: [{ host: 127.0.0.1, port: 0 }]',
    'routes:',
    '  - name: api',
    '    match: { path: /api }',
    `    upstream: ${a.url}`,
    '    upstreamPrefix: /v1',
    '    balance: { circuit: { maxRequests: 1 } }',
    '',
  ].join('\n');
  const gateway = await startBin(['serve', files.write('circuit.yaml', text)]);
  try {
    const slow = get(`${gateway.url}/api/slow`, { fresh: true });
    await delay(400);
    const refused = await get(`${gateway.url}/api/x`, { fresh: true });
    assert.is(refused.status, 503, refused.text);
    assert.ok(refused.text.includes('ERR_CIRCUIT_OPEN') || String(refused.headers['x-relay-error'] ?? '').includes('CIRCUIT'), refused.text);
    assert.not.ok(refused.text.includes(String(a.port)), refused.text);
    assert.is((await slow).status, 200);
  } finally {
    await gateway.stop('SIGTERM');
    await a.close();
  }
});

test('regression: https targets with tls.ca: the pool\'s health checks connect with the route\'s CA before any request (both targets healthy, requests shared)', async () => {
  // balance README: "an https: target is checked with the relay's tls (ca, servername, rejectUnauthorized)".
  const { createServer } = await import('node:https');
  const servers = await Promise.all(
    ['a', 'b'].map(
      (name) =>
        new Promise<{ url: string; checks: number; close(): Promise<void> }>((resolve) => {
          const state = { checks: 0 };
          const server = createServer({ key: tlsFixture.key, cert: tlsFixture.cert }, (req, res) => {
            if (req.url === '/health') state.checks++;
            res.end(name);
          });
          server.listen(0, '127.0.0.1', () => {
            const port = (server.address() as { port: number }).port;
            resolve({
              url: `https://localhost:${port}`,
              get checks() {
                return state.checks;
              },
              close: () => new Promise<void>((done) => server.close(() => done())).then(() => undefined),
            } as { url: string; checks: number; close(): Promise<void> });
            server.unref();
          });
        }),
    ),
  );
  files.write('ca.pem', tlsFixture.cert.toString());
  const text = [
    'listen: [{ host: 127.0.0.1, port: 0 }]',
    'status: { path: /_relay/status }',
    'routes:',
    '  - name: api',
    '    upstream:',
    ...servers.map((server) => `      - { url: "${server.url}", tls: { ca: ca.pem } }`),
    '    balance:',
    '      healthCheck: { path: /health, interval: 100, unhealthyThreshold: 1, healthyThreshold: 1 }',
    '',
  ].join('\n');
  const gateway = await startBin(['serve', files.write('https-pool.yaml', text)]);
  try {
    await delay(700);
    assert.ok(servers.every((server) => server.checks >= 2), `health checks reached: ${servers.map((server) => server.checks)}`);
    const status = JSON.parse((await get(`${gateway.url}/_relay/status.json`)).text) as { routes: Array<{ targets: Array<{ health: string }> }> };
    assert.equal(status.routes[0]!.targets.map((target) => target.health), ['healthy', 'healthy']);
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await get(`${gateway.url}/x`)).text);
    assert.equal([...seen].sort(), ['a', 'b']);
  } finally {
    await gateway.stop('SIGTERM');
    await Promise.all(servers.map((server) => server.close()));
  }
});

test.run();
