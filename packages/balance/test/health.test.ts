import http from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { delay, serveRelay, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { balance, type TargetEvent } from '../src/index.js';
import { countBy, load } from './helpers.js';

/** An upstream whose /health answers 200 or 503 as `state.up` says. */
async function flippable(name: string): Promise<{ up: Upstream; state: { up: boolean } }> {
  const state = { up: true };
  const up = await startUpstream((req, res) => {
    res.setHeader('x-upstream', name);
    if (req.url === '/health') res.statusCode = state.up ? 200 : 503;
    res.end(name);
  });
  return { up, state };
}

test('health checks mark a target unhealthy (it gets no request) and healthy again', async () => {
  const a = await flippable('a');
  const b = await flippable('b');
  const events: TargetEvent[] = [];
  const pool = balance({
    targets: [a.up.url, b.up.url],
    healthCheck: { path: '/health', interval: 50, timeout: 1000, healthyThreshold: 2, unhealthyThreshold: 2 },
    onStateChange: (event) => events.push(event),
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: a.up.url, stages: [pool] }));
  const isHealthy = (): boolean => pool.targets()[0]!.healthy;
  assert.equal(Object.keys(countBy(await load(served.url, 10, 1))).sort(), ['a', 'b'], 'started lazily, both in');
  a.state.up = false;
  assert.ok(await waitFor(() => !isHealthy(), 5_000), 'a turned unhealthy');
  assert.equal(countBy(await load(served.url, 20, 2)), { b: 20 });
  a.state.up = true;
  assert.ok(await waitFor(isHealthy, 5_000), 'a healthy again');
  assert.ok((countBy(await load(served.url, 20, 2)).a ?? 0) > 0);
  assert.equal(
    events.filter((event) => event.url === a.up.url).map((event) => event.change),
    ['added', 'unhealthy', 'healthy'],
  );
  assert.ok(a.up.requests.filter((r) => r.url === '/health').every((r) => r.headers['user-agent'] === 'relay-health-check'));
  pool.stop();
  // A check already on the wire may still arrive; after that, none (the interval is 50 ms).
  await new Promise((resolve) => setTimeout(resolve, 200));
  const checks = a.up.requests.length;
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.is(a.up.requests.length, checks, 'no check after stop()');
  await served.close();
  await a.up.close();
  await b.up.close();
});

test('no healthy target: the pool fails open to every target (panic mode) rather than refusing', async () => {
  const a = await flippable('a');
  a.state.up = false;
  const pool = balance({ targets: [a.up.url], healthCheck: { path: '/health', interval: 30, unhealthyThreshold: 1 } });
  await pool.start();
  assert.ok(await waitFor(() => !pool.targets()[0]!.healthy, 5_000));
  const served = await serveRelay(createRelay({ targetBaseUrl: a.up.url, stages: [pool] }));
  assert.equal(countBy(await load(served.url, 5, 1)), { a: 5 });
  pool.stop();
  await served.close();
  await a.up.close();
});

test('a check that times out or cannot connect fails', async () => {
  const hang = await startUpstream(() => {});
  const pool = balance({ targets: [hang.url], healthCheck: { path: '/health', interval: 40, timeout: 50, unhealthyThreshold: 2 } });
  await pool.start();
  assert.ok(await waitFor(() => !pool.targets()[0]!.healthy, 5_000));
  pool.stop();
  await hang.close();
});

test('adopt: a pool takes another pool\'s verdicts by URL (health when it checks health, ejections when it detects outliers)', async () => {
  const a = 'http://127.0.0.1:1';
  const b = 'http://127.0.0.1:2';
  const until = Date.now() + 60_000;
  const states = [
    { url: a, weight: 1, inFlight: 0, pending: 0, healthy: false, ejectedUntil: 0, ejections: 0, lastEjectionAt: 0, consecutiveFailures: 0, circuitOpen: false },
    { url: b, weight: 1, inFlight: 0, pending: 0, healthy: true, ejectedUntil: until, ejections: 2, lastEjectionAt: until - 2_000, consecutiveFailures: 0, circuitOpen: false },
    { url: 'http://127.0.0.1:3', weight: 1, inFlight: 0, pending: 0, healthy: false, ejectedUntil: 0, ejections: 0, lastEjectionAt: 0, consecutiveFailures: 0, circuitOpen: false },
  ];
  const checked = balance({ targets: [a, b], healthCheck: { path: '/health' }, outlier: false });
  checked.adopt(states);
  assert.equal(checked.targets().map((t) => [t.url, t.healthy, t.ejectedUntil]), [[a, false, 0], [b, true, 0]], 'health checks, no outlier detection: health only');
  const plain = balance({ targets: [a, b], outlier: false });
  plain.adopt(states);
  assert.equal(plain.targets().map((t) => [t.healthy, t.ejectedUntil]), [[true, 0], [true, 0]], 'no checks, no outlier detection: nothing would undo a verdict, so none is taken');
  const both = balance({ targets: [a, b], healthCheck: { path: '/health' } });
  both.adopt(states);
  assert.equal(both.targets().map((t) => [t.healthy, t.ejectedUntil, t.ejections, t.lastEjectionAt]), [[false, 0, 0, 0], [true, until, 2, until - 2_000]]);
});

/** An upstream that answers `name` and keeps the set of its open connections. */
async function withSockets(name: string): Promise<{ up: Upstream; open: Set<Socket> }> {
  const open = new Set<Socket>();
  const up = await startUpstream((_req, res) => res.end(name));
  up.server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  return { up, open };
}

test("a target removed by setTargets keeps no health-check connection open (the checks' keep-alive socket to it is closed)", async () => {
  const { up: a, open } = await withSockets('a');
  const b = await startUpstream((_req, res) => res.end('b'));
  const pool = balance({ targets: [a.url, b.url], healthCheck: { path: '/health', interval: 50 } });
  await pool.start();
  assert.ok(await waitFor(() => a.requests.length >= 2, 3_000), 'a was checked');
  assert.ok(open.size >= 1, 'the checks keep a connection to a');
  pool.setTargets([b.url]);
  const closed = await waitFor(() => open.size === 0, 3_000);
  const checks = a.requests.length;
  await delay(200);
  const bChecked = b.requests.length;
  await waitFor(() => b.requests.length > bChecked, 3_000);
  pool.stop();
  await a.close();
  await b.close();
  assert.is(a.requests.length, checks, 'no check of a after it left');
  assert.ok(b.requests.length > bChecked, 'b is still checked');
  assert.ok(closed, `${open.size} health-check connection(s) to the removed target still open 3 s after setTargets`);
});

test("an address a DNS name no longer has keeps no health-check connection open", async () => {
  const { up, open } = await withSockets('a');
  let records = ['127.0.0.1'];
  const pool = balance({ targets: [{ dns: `http://app.internal:${up.port}`, interval: 50 }], resolve: async () => records, healthCheck: { path: '/health', interval: 50 } });
  await pool.start();
  assert.ok(await waitFor(() => up.requests.length >= 2, 3_000), 'the address was checked');
  assert.ok(open.size >= 1, 'the checks keep a connection to it');
  records = [];
  const closed = await waitFor(() => open.size === 0, 3_000);
  pool.stop();
  await up.close();
  assert.equal(pool.targets(), [], 'the name has no address');
  assert.ok(closed, `${open.size} health-check connection(s) to the address still open 3 s after the name lost it`);
});

test('a check node refuses to make fails start(): no timer is left to check, or to throw on a tick', async () => {
  // balance() refuses a path node cannot send (a space: healthCheck.path), so node's own refusal is
  // made here: node:http's request throws for one marker path while this test runs (the checks
  // import it by name, which syncBuiltinESMExports updates), as it threw for '/bad path'.
  const { up } = await flippable('a');
  const original = http.request;
  const refusing = ((...args: unknown[]) => {
    const options = args[0] as string | URL | { path?: string | null };
    if (typeof options === 'object' && !(options instanceof URL) && options.path === '/refused-check') throw new TypeError('Request path contains unescaped characters');
    return (original as (...given: unknown[]) => http.ClientRequest)(...args);
  }) as typeof http.request;
  http.request = refusing;
  syncBuiltinESMExports();
  try {
    assert.throws(() => balance({ targets: [up.url], healthCheck: { path: '/bad path' } }), /healthCheck\.path/, 'balance() refuses a path with a space');
    const pool = balance({ targets: [up.url], healthCheck: { path: '/refused-check', interval: 20, timeout: 50 } });
    assert.throws(() => void pool.start(), /unescaped characters/);
    // Past the check's deadline and several intervals: a leftover timer would throw here and end the process.
    await delay(300);
    assert.is(up.requests.length, 0);
    assert.throws(() => void pool.start(), /unescaped characters/, 'a second start fails the same way, rather than being taken as running');
    pool.stop();
  } finally {
    http.request = original;
    syncBuiltinESMExports();
    await up.close();
  }
});

test.run();
