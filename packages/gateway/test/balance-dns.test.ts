// A pool target `{ dns: http://name:port }` in a route's upstream list, on real sockets: the gateway
// proxies to every address of the name, shows them on the status page (and only counts in /metrics),
// a reload keeps what the old pool knew of each address, the lookups stop with the generation that
// retires and at shutdown, and a bad value is a config error naming its key and line.
import { lookup as systemLookup } from 'node:dns/promises';
import dnsPromises from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import type { AddressInfo } from 'node:net';
import { register } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, delay, fetchRaw, listen, startUpstream, waitFor } from '@relay/testkit';
import { ConfigError, createGateway, loadConfig, validateConfig, type Gateway, type LoadedConfig } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { gatewayMetrics } from '../src/metrics.js';
import { configDir, rejection } from './bin.js';

const files = configDir();
const logger = createLogger({ level: 'error', stream: { write: () => true } as unknown as NodeJS.WritableStream });

// Every lookup of `localhost` (only the pools of this file ask for it) is counted: @relay/balance
// uses dns.promises.lookup, whose ESM binding follows the patched property once synced.
let lookups = 0;
const realLookup = dnsPromises.lookup;
dnsPromises.lookup = ((hostname: string, options: never) => {
  if (hostname === 'localhost') lookups++;
  return realLookup(hostname, options);
}) as typeof dnsPromises.lookup;
syncBuiltinESMExports();

interface DualUpstream {
  readonly port: number;
  readonly hosts: string[];
  /** What /health answers. */
  health: number;
  close(): Promise<void>;
}

/**
 * An upstream on every address `localhost` may resolve to: `::` (IPv4 and IPv6 on one port) where
 * IPv6 is on, else 127.0.0.1. Either way each address of localhost reaches it, so the test does not
 * depend on whether this machine's localhost has an AAAA record.
 */
async function localUpstream(): Promise<DualUpstream> {
  const upstream: DualUpstream = { port: 0, hosts: [], health: 200, close: () => close(server) };
  const server: Server = createServer((req, res) => {
    if (req.url === '/health') return void res.writeHead(upstream.health).end();
    upstream.hosts.push(String(req.headers.host));
    res.end('dns');
  });
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '::', () => resolve()));
  } catch {
    await listen(server);
  }
  return Object.assign(upstream, { port: (server.address() as AddressInfo).port });
}

/** The origins balance() makes of localhost's addresses, in the order the resolver gives them. */
async function localhostOrigins(port: number): Promise<string[]> {
  const records = await systemLookup('localhost', { all: true, verbatim: true });
  return [...new Set(records.map((record) => record.address))].map((address) => `http://${address.includes(':') ? `[${address}]` : address}:${port}`);
}

function yaml(lines: string[]): Promise<LoadedConfig> {
  return loadConfig(files.write(`dns-${Math.random().toString(36).slice(2)}.yaml`, ['listen: [{ port: 0 }]', 'status: { path: /_status }', 'routes:', ...lines, ''].join('\n')));
}

async function serving(loaded: LoadedConfig, run: (gateway: Gateway, base: string) => Promise<void>): Promise<void> {
  const gateway = createGateway(loaded, { logger });
  await gateway.startup();
  const server = createServer(gateway.handle);
  const base = await listen(server);
  try {
    await run(gateway, base);
  } finally {
    await close(server);
    await gateway.shutdown(1_000);
  }
}

/** The number of lookups does not grow over a while (a lookup started just before the stop may still end). */
async function lookupsStopped(): Promise<boolean> {
  await delay(100);
  const before = lookups;
  await delay(400);
  return lookups === before;
}

test('upstream: [{ dns: http://localhost:PORT }]: every address of the name is a target, sent Host: localhost:PORT; the status page lists the addresses with their name, /metrics counts them', async () => {
  const upstream = await localUpstream();
  const expected = await localhostOrigins(upstream.port);
  try {
    // A lone DNS target, without balance:, is a pool all the same: its addresses are the pool's to follow.
    await serving(await yaml(['  - name: api', `    upstream: [{ dns: "http://localhost:${upstream.port}", interval: 60000 }]`]), async (gateway, base) => {
      for (let i = 0; i < 4; i++) {
        const response = await fetchRaw(`${base}/x`);
        assert.equal([response.status, response.text], [200, 'dns']);
      }
      assert.equal(upstream.hosts, Array(4).fill(`localhost:${upstream.port}`));
      const targets = gateway.status().routes[0]!.targets;
      assert.equal(
        targets.map((target) => [target.url, target.health]),
        expected.map((url) => [url, 'healthy']),
      );
      const json = JSON.parse((await fetchRaw(`${base}/_status.json`)).text);
      // Each address names the target it was resolved from: an operator can tell which name it belongs to.
      assert.equal(
        json.routes[0].targets.map((target: { url: string; dns?: string }) => [target.url, target.dns]),
        expected.map((url) => [url, `http://localhost:${upstream.port}`]),
      );
      await gatewayMetrics(() => gateway);
      const metrics = await register.metrics();
      assert.match(metrics, new RegExp(`relay_gateway_pool_targets\\{route="api"\\} ${expected.length}\\b`));
      assert.not.ok(metrics.includes(String(upstream.port)), '/metrics names a target address');
    });
  } finally {
    await upstream.close();
  }
});

test('a reload keeping the dns target: the new pool starts with the old one\'s verdict on each address (down stays down), then serves', async () => {
  const upstream = await localUpstream();
  upstream.health = 503;
  const other = await startUpstream((_req, res) => res.end('other'));
  const dns = `{ dns: "http://localhost:${upstream.port}", interval: 60000 }`;
  const checks = (interval: number) => ['    balance:', `      healthCheck: { path: /health, interval: ${interval}, timeout: 1000, unhealthyThreshold: 1, healthyThreshold: 1 }`];
  try {
    await serving(await yaml(['  - name: api', `    upstream: [${dns}, ${other.url}]`, ...checks(50)]), async (gateway, base) => {
      const dnsTargets = () => gateway.status().routes[0]!.targets.filter((target) => target.url !== other.url);
      assert.ok(await waitFor(() => dnsTargets().length > 0 && dnsTargets().every((target) => target.health === 'unhealthy'), 5_000), JSON.stringify(dnsTargets()));
      // The new pool's own first check is a minute away: only the old pool's verdict keeps the addresses out.
      await gateway.reload(await yaml(['  - name: api', `    upstream: [${dns}, ${other.url}]`, '    retry: { maxRetries: 1 }', ...checks(60_000)]));
      assert.ok(dnsTargets().length > 0 && dnsTargets().every((target) => target.health === 'unhealthy'), JSON.stringify(dnsTargets()));
      const served = upstream.hosts.length;
      for (let i = 0; i < 4; i++) assert.is((await fetchRaw(`${base}/x`)).text, 'other');
      assert.is(upstream.hosts.length, served, 'an address known to be down got traffic after the reload');
    });
  } finally {
    await upstream.close();
    await other.close();
  }
});

test('the lookups stop when a reload\'s old generation retires, and at shutdown', async () => {
  const upstream = await localUpstream();
  const other = await startUpstream((_req, res) => res.end('other'));
  const dnsRoute = ['  - name: api', `    upstream: [{ dns: "http://localhost:${upstream.port}", interval: 30 }]`];
  try {
    let start = lookups;
    await serving(await yaml(dnsRoute), async (gateway, base) => {
      assert.ok(lookups > start, 'the name was looked up before the gateway took traffic');
      assert.is((await fetchRaw(`${base}/x`)).text, 'dns');
      assert.ok(await waitFor(() => lookups >= start + 3, 5_000), 'the name is looked up again every interval');
      await gateway.reload(await yaml(['  - name: api', `    upstream: [${other.url}]`]));
      assert.ok(await waitFor(() => gateway.retiring.size === 0, 3_000), 'the old relays retired');
      assert.ok(await lookupsStopped(), 'the retired pool still looks its name up');
      assert.is((await fetchRaw(`${base}/x`)).text, 'other');
      start = lookups;
      await gateway.reload(await yaml(dnsRoute));
      assert.ok(lookups > start, 'the reloaded dns target was looked up before it took traffic');
      assert.is((await fetchRaw(`${base}/x`)).text, 'dns');
    });
    assert.ok(await lookupsStopped(), 'the pool still looks its name up after shutdown');
  } finally {
    await upstream.close();
    await other.close();
  }
});

test('config: a dns target is checked like the others, the error naming its key', () => {
  const issues = (upstream: unknown) => {
    try {
      validateConfig({ listen: [{ port: 1 }], routes: [{ upstream: 'http://10.0.0.9:80' }, { upstream }] }, 'g.json');
    } catch (error) {
      return (error as ConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
    }
    return [];
  };
  assert.equal(issues([{ dns: 'http://app.internal:8000' }]), []);
  assert.equal(issues([{ dns: 'https://app.internal:8443', interval: 5000, weight: 2, tls: { servername: 'app.internal' } }, 'http://10.0.0.1:8000']), []);
  assert.equal(issues([{ dns: 'ftp://app.internal:21' }]), ['routes[1].upstream[0].dns: expected an absolute http:// or https:// URL, got "ftp://app.internal:21"']);
  assert.equal(issues([{ dns: 'http://app.internal:8000/api' }]), [
    'routes[1].upstream[0].dns: expected an origin such as http://10.0.0.1:8000, without a path (the path goes in upstreamPrefix), got "http://app.internal:8000/api"',
  ]);
  const secret = issues([{ dns: 'http://user:s3cret@app.internal:8000' }]);
  assert.equal(secret, ['routes[1].upstream[0].dns: expected no credentials in the URL (set an Authorization header with headers:)']);
  assert.equal(issues([{ dns: 'http://app.internal:8000', interval: 0 }]), ['routes[1].upstream[0].interval: expected at least 1 ms, got 0']);
  assert.equal(issues([{ dns: 'http://app.internal:8000', interval: 2 ** 31 }]), [
    "routes[1].upstream[0].interval: expected at most 2147483647 ms (about 24.8 days, node's timer limit), got 2147483648",
  ]);
  assert.equal(issues([{ url: 'http://10.0.0.1:8000', dns: 'http://app.internal:8000' }]), ['routes[1].upstream[0]: expected url or dns, not both']);
  assert.equal(issues([{ url: 'http://10.0.0.1:8000', interval: 5000 }]), ['routes[1].upstream[0].interval: expected interval only with dns']);
  assert.equal(issues([{ dns: 'http://app.internal:8000' }, { dns: 'http://app.internal:8000/' }]), ['routes[1].upstream[1]: http://app.internal:8000/ is listed twice']);
  assert.equal(issues([{ dns: 'http://app.internal:8000', intervall: 5 }]), ['routes[1].upstream[0].intervall: unknown key "intervall" (did you mean "interval"?)']);
  assert.equal(issues([{ dns: 'http://app.internal:8000', tls: { servername: 'a' } }, { url: 'https://10.0.0.1:8443', tls: { servername: 'b' } }]), [
    'routes[1].upstream[1].tls: expected the same tls as the targets before it (a route connects to its targets with one tls)',
  ]);
});

test('config: a bad dns value in a YAML file names its line; relay check builds the pool without looking anything up', async () => {
  const error = await rejection(yaml(['  - upstream: [http://127.0.0.1:9001]', '  - upstream:', '      - { dns: "http://app.internal:8000/v1" }']));
  assert.equal(
    error.issues.map((issue) => [issue.path, issue.line]),
    [["routes[1].upstream[0].dns", 6]],
  );
  assert.match(error.message, /:6: routes\[1\]\.upstream\[0\]\.dns: expected an origin/);
  const before = lookups;
  const gateway = createGateway(await yaml(['  - upstream: [{ dns: "http://localhost:9" }]']), { logger });
  assert.ok(gateway.current.routes[0]!.pool !== undefined, 'a lone dns target is a pool');
  await gateway.shutdown(100);
  assert.is(lookups, before, 'a gateway built but never started looked a name up');
});

test.after(() => files.cleanup());

test.run();
