// A route with several upstreams (`upstream: [a, b]`, `balance:`), on real sockets: traffic is shared,
// a target whose health checks fail is taken out, a reload drops a target while a request is in
// flight, the pool's checks stop with its relays, WebSocket sessions are balanced too, and the
// config errors name their line.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { register } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { close, delay, fetchRaw, listen, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { ConfigError, createGateway, loadConfig, validateConfig, type Gateway, type LoadedConfig } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { gatewayMetrics } from '../src/metrics.js';
import { configDir, rejection } from './bin.js';

const files = configDir();
const logger = createLogger({ level: 'error', stream: { write: () => true } as unknown as NodeJS.WritableStream });

/** An upstream that answers with its name, counts its health checks and can hold a request. */
async function named(name: string): Promise<Upstream & { checks: () => number }> {
  const upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') return void res.end('ok');
    const wait = req.url?.startsWith('/slow') ? 400 : 0;
    setTimeout(() => res.end(name), wait);
  });
  return Object.assign(upstream, { checks: () => upstream.requests.filter((seen) => seen.url === '/health').length });
}

function yaml(lines: string[]): Promise<LoadedConfig> {
  return loadConfig(files.write(`balance-${Math.random().toString(36).slice(2)}.yaml`, ['listen: [{ port: 0 }]', 'status: { path: /_status }', 'routes:', ...lines, ''].join('\n')));
}

function poolRoute(targets: string[], extra: string[] = []): string[] {
  return ['  - name: api', `    upstream: [${targets.join(', ')}]`, ...extra];
}

const checked = ['    balance:', '      healthCheck: { path: /health, interval: 50, timeout: 500, unhealthyThreshold: 1, healthyThreshold: 1 }'];

async function serving(loaded: LoadedConfig, run: (gateway: Gateway, base: string) => Promise<void>): Promise<void> {
  const gateway = createGateway(loaded, { logger });
  await gateway.startup();
  const server: Server = createServer(gateway.handle).on('upgrade', gateway.upgrade);
  const base = await listen(server);
  try {
    await run(gateway, base);
  } finally {
    await close(server);
    await gateway.shutdown(1_000);
  }
}

async function bodies(base: string, count: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < count; i++) {
    const response = await fetchRaw(`${base}/x`);
    assert.is(response.status, 200, response.body.toString());
    seen.push(response.body.toString());
  }
  return seen;
}

test('upstream: [a, b] shares the traffic round robin; weights are honoured', async () => {
  const a = await named('a');
  const b = await named('b');
  try {
    await serving(await yaml(poolRoute([a.url, b.url])), async (_gateway, base) => {
      const seen = await bodies(base, 10);
      assert.equal([seen.filter((name) => name === 'a').length, seen.filter((name) => name === 'b').length], [5, 5]);
    });
    await serving(await yaml(poolRoute([a.url, `{ url: "${b.url}", weight: 3 }`])), async (_gateway, base) => {
      const seen = await bodies(base, 8);
      assert.equal([seen.filter((name) => name === 'a').length, seen.filter((name) => name === 'b').length], [2, 6]);
    });
  } finally {
    await a.close();
    await b.close();
  }
});

test('a target that goes down is taken out by its health check: every request goes to the other; the status page and /metrics say so without addresses in /metrics', async () => {
  const a = await named('a');
  const b = await named('b');
  try {
    await serving(await yaml(poolRoute([a.url, b.url], checked)), async (gateway, base) => {
      assert.ok(await waitFor(() => a.checks() > 0 && b.checks() > 0), 'the health checks started with the gateway');
      await b.close();
      const targets = () => gateway.status().routes[0]!.targets;
      assert.ok(await waitFor(() => targets().some((target) => target.health === 'unhealthy')), JSON.stringify(targets()));
      assert.equal(
        targets().map((target) => [target.url, target.health]),
        [
          [a.url, 'healthy'],
          [b.url, 'unhealthy'],
        ],
      );
      assert.equal(await bodies(base, 6), ['a', 'a', 'a', 'a', 'a', 'a']);

      const json = await fetchRaw(`${base}/_status.json`);
      assert.is(JSON.parse(json.body.toString()).routes[0].targets.length, 2);
      await gatewayMetrics(() => gateway);
      const metrics = await register.metrics();
      assert.match(metrics, /relay_gateway_pool_targets\{route="api"\} 2/);
      assert.match(metrics, /relay_gateway_pool_targets_up\{route="api"\} 1/);
      assert.not.ok(metrics.includes(String(b.port)), '/metrics names a target address');
    });
  } finally {
    await a.close();
  }
});

test('every target down: the client gets the relay\'s error, naming no address', async () => {
  const a = await named('a');
  const b = await named('b');
  await a.close();
  await b.close();
  await serving(await yaml(poolRoute([a.url, b.url])), async (_gateway, base) => {
    const response = await fetchRaw(`${base}/x`);
    assert.is(response.status, 502);
    const text = JSON.stringify(response.headers) + response.body.toString();
    assert.not.ok(text.includes('127.0.0.1') || text.includes(String(a.port)) || text.includes(String(b.port)), text);
  });
});

test('a reload to a config without b: a request in flight on the old pool finishes; new ones go to a alone; the old pool\'s checks stop, and the new one\'s at shutdown', async () => {
  const a = await named('a');
  const b = await named('b');
  try {
    let gateway!: Gateway;
    await serving(await yaml(poolRoute([a.url, b.url], checked)), async (served, base) => {
      gateway = served;
      const slow = [fetchRaw(`${base}/slow`), fetchRaw(`${base}/slow`)];
      await delay(100);
      await gateway.reload(await yaml(poolRoute([a.url], checked)));
      assert.equal((await Promise.all(slow)).map((response) => [response.status, response.body.toString()]).sort(), [
        [200, 'a'],
        [200, 'b'],
      ]);
      assert.equal(await bodies(base, 4), ['a', 'a', 'a', 'a']);
      assert.equal(gateway.status().routes[0]!.targets.map((target) => target.url), [a.url]);
      // The old generation retires once idle (polled every 200 ms): b is no longer checked.
      assert.ok(await waitFor(() => gateway.retiring.size === 0, 3_000), 'the old relays retired');
      // A check written just before the stop may still be read by the upstream (in this process) after it.
      await delay(100);
      const checks = b.checks();
      await delay(300);
      assert.is(b.checks(), checks, 'the old pool still checks b after its relays retired');
    });
    await delay(100);
    const checks = a.checks();
    await delay(300);
    assert.is(a.checks(), checks, 'the pool still checks a after shutdown');
  } finally {
    await a.close();
    await b.close();
  }
});

test('WebSocket sessions through a balanced route go to both targets', async () => {
  const servers: Server[] = [];
  const urls: string[] = [];
  for (const name of ['a', 'b']) {
    const server = createServer((_req, res) => res.end(name));
    new WebSocketServer({ server }).on('connection', (socket) => socket.on('message', (data) => socket.send(`${name}: ${String(data)}`)));
    servers.push(server);
    urls.push(await listen(server));
  }
  try {
    await serving(await yaml(poolRoute(urls)), async (gateway, base) => {
      const replies: string[] = [];
      for (let i = 0; i < 2; i++) {
        const socket = new WebSocket(`${base.replace('http:', 'ws:')}/room`);
        await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
        socket.send('hi');
        replies.push(await new Promise<string>((resolve) => socket.once('message', (data) => resolve(String(data)))));
        assert.is(gateway.status().websocketSessions, 1);
        socket.close();
        await new Promise((resolve) => socket.once('close', resolve));
      }
      assert.equal(replies.sort(), ['a: hi', 'b: hi']);
    });
  } finally {
    await Promise.all(servers.map(close));
  }
});

test('config: upstream lists and balance: are checked, naming the nearest key', () => {
  const issues = (route: object) => {
    try {
      validateConfig({ listen: [{ port: 1 }], routes: [route] }, 'g.json');
    } catch (error) {
      return (error as ConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
    }
    return [];
  };
  const two = ['http://10.0.0.1:8000', 'http://10.0.0.2:8000'];
  assert.equal(issues({ upstream: two, balance: { strategy: 'least-request', healthCheck: { path: '/health' }, outlier: false, circuit: { maxRequests: 10 } } }), []);
  assert.equal(issues({ upstream: [two[0], { url: two[1], weight: 2 }] }), []);
  assert.equal(issues({ upstream: two, balance: { stratgy: 'hash' } }), ['routes[0].balance.stratgy: unknown key "stratgy" (did you mean "strategy"?)']);
  assert.equal(issues({ upstream: two, balance: { healthCheck: { path: '/h', intervl: 5 } } }), ['routes[0].balance.healthCheck.intervl: unknown key "intervl" (did you mean "interval"?)']);
  assert.equal(issues({ upstream: two, balance: { strategy: 'random' } }), ['routes[0].balance.strategy: expected one of round-robin, least-request, hash, got "random"']);
  assert.equal(issues({ upstream: two, balance: { circuit: {} } }), ['routes[0].balance.circuit.maxRequests: required: expected a number']);
  assert.equal(issues({ upstream: [two[0], { url: two[1], wieght: 2 }] }), ['routes[0].upstream[1].wieght: unknown key "wieght" (did you mean "weight"?)']);
  assert.equal(issues({ upstream: [two[0], 'http://10.0.0.2:8000/api'] }), [
    'routes[0].upstream[1]: expected an origin such as http://10.0.0.1:8000, without a path (the path goes in upstreamPrefix), got "http://10.0.0.2:8000/api"',
  ]);
  assert.equal(issues({ upstream: [two[0], 'http://10.0.0.1:8000/'] }), ['routes[0].upstream[1]: http://10.0.0.1:8000/ is listed twice']);
  assert.equal(issues({ upstream: [{ url: two[0], tls: { servername: 'a' } }, { url: two[1], tls: { servername: 'b' } }] }), [
    'routes[0].upstream[1].tls: expected the same tls as the targets before it (a route connects to its targets with one tls)',
  ]);
  assert.equal(issues({ upstream: [] }), ['routes[0].upstream: expected at least one target, got a list of 0']);
  assert.equal(issues({ upstream: [42] }), ['routes[0].upstream[0]: expected a URL string, { url, tls, weight } or { dns, interval, tls, weight }']);
  assert.equal(issues({ upstream: 42 }), ['routes[0].upstream: expected a URL string, { url, tls } or a list of them']);
});

test('config: a YAML error names its line; balance()\'s own refusal too', async () => {
  const error = await rejection(yaml(['  - upstream:', '      - http://127.0.0.1:9001', '      - http://127.0.0.1:9002/v1', '    balance: { healthChek: { path: /h } }']));
  assert.equal(
    error.issues.map((issue) => [issue.path, issue.line]),
    [
      ['routes[0].upstream[1]', 6],
      ['routes[0].balance.healthChek', 7],
    ],
  );
  assert.match(error.message, /:7: routes\[0\]\.balance\.healthChek: unknown key "healthChek" \(did you mean "healthCheck"\?\)/);
  const loaded = await yaml(['  - upstream: [http://127.0.0.1:9001, http://127.0.0.1:9002]', '    balance:', '      hashKey: { header: x-user }']);
  const refused = await rejection(Promise.resolve().then(() => createGateway(loaded, { logger })));
  assert.equal(refused.issues.map((issue) => [issue.path, issue.line, issue.message]), [['routes[0].balance', 6, "balance: hashKey needs strategy: 'hash'"]]);
});

test('one upstream with balance: is a pool of one (its path kept); without balance: no pool', async () => {
  const a = await named('a');
  try {
    await serving(await yaml(['  - name: api', `    upstream: ${a.url}/v1`, '    balance: { circuit: { maxRequests: 5 } }']), async (gateway, base) => {
      assert.equal(await bodies(base, 1), ['a']);
      assert.is(a.requests.at(-1)!.url, '/v1/x');
      assert.equal(gateway.status().routes[0]!.targets.map((target) => [target.url, target.inFlight]), [[a.url, 0]]);
    });
    await serving(await yaml(['  - name: api', `    upstream: ${a.url}`]), async (gateway) => {
      assert.is(gateway.current.routes[0]!.pool, undefined);
    });
  } finally {
    await a.close();
  }
});

test.after(() => files.cleanup());

test.run();
