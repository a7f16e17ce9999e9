// createGateway in-process, on real sockets: what the bin builds, tested without spawning it.
import { createServer, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { ConfigError, createGateway, loadConfig, type Gateway } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { gatewayMetrics } from '../src/metrics.js';
import { configDir } from './bin.js';

const files = configDir();
const logger = createLogger({ level: 'error', stream: { write: () => true } as unknown as NodeJS.WritableStream });
let upstream: Upstream;
let gateway: Gateway;
let server: Server;
let base: string;

async function config(lines: string[], listen = 'listen: [{ port: 0 }]') {
  return loadConfig(files.write(`gateway-${Math.random().toString(36).slice(2)}.yaml`, [listen, ...lines, ''].join('\n')));
}

test.before(async () => {
  upstream = await startUpstream();
  gateway = createGateway(
    await config([
      'health: false',
      'routes:',
      '  - name: whole-path',
      '    match: { path: /keep }',
      '    stripPrefix: false',
      `    upstream: ${upstream.url}`,
      '  - name: tenants',
      '    match: { path: /, host: "*.tenants.example" }',
      `    upstream: ${upstream.url}`,
      '    upstreamPrefix: /tenant',
      '  - name: fallback',
      `    upstream: ${upstream.url}`,
      '    upstreamPrefix: /fallback',
    ]),
    { logger },
  );
  await gateway.startup();
  server = createServer(gateway.handle);
  server.on('upgrade', gateway.upgrade);
  base = await listen(server);
});

test.after(async () => {
  await close(server);
  await gateway.shutdown(1_000);
  await upstream.close();
  files.cleanup();
});

function seenUrl(response: { text: string }): string {
  return (JSON.parse(response.text) as { url: string }).url;
}

test('stripPrefix: false forwards the whole path, with no X-Forwarded-Prefix', async () => {
  const response = await fetchRaw(`${base}/keep/a?b=1`);
  assert.is(seenUrl(response), '/keep/a?b=1');
  const seen = JSON.parse(response.text) as { headers: Record<string, string> };
  assert.is(seen.headers['x-forwarded-prefix'], undefined);
  assert.is(seen.headers['x-forwarded-host'], new URL(base).host);
});

test('a wildcard host route takes one label in front of its suffix, and not the bare suffix', async () => {
  assert.is(seenUrl(await fetchRaw(`${base}/x`, { headers: { host: 'acme.tenants.example:8080' } })), '/tenant/x');
  assert.is(seenUrl(await fetchRaw(`${base}/x`, { headers: { host: 'tenants.example' } })), '/fallback/x');
  assert.is(seenUrl(await fetchRaw(`${base}/x`, { headers: { host: 'a.b.tenants.example' } })), '/fallback/x');
});

test('health: false frees the path for the routes', async () => {
  assert.is(seenUrl(await fetchRaw(`${base}/healthz`)), '/fallback/healthz');
});

test('dot segments, escaped or not, under a prefix are still 400 after unreserved escapes are decoded, and reach no upstream', async () => {
  const before = upstream.requests.length;
  const port = Number(new URL(base).port);
  for (const target of ['/keep/%2e%2e/admin', '/keep/.%2E/admin', '/keep/..%2fadmin', '/keep/..;/admin', '/x/../keep', '//keep']) {
    const response = await sendRaw(port, `GET ${target} HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 400 /, target);
  }
  assert.is(upstream.requests.length, before);
});

test('an absolute-form target routes by its path', async () => {
  const response = await sendRaw(Number(new URL(base).port), 'GET http://gw.example/keep/abs HTTP/1.1\r\nhost: gw.example\r\nconnection: close\r\n\r\n');
  assert.match(response, /^HTTP\/1\.1 200 /);
  assert.match(response, /"url":"\/keep\/abs"/);
});

test('an absolute-form target routes by its own host, not by a conflicting Host header (RFC 9112 3.2.2)', async () => {
  const port = Number(new URL(base).port);
  const send = (target: string, host: string) => sendRaw(port, `GET ${target} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
  assert.match(await send('http://acme.tenants.example/x', 'other.example'), /"url":"\/tenant\/x"/);
  assert.match(await send('http://other.example/x', 'acme.tenants.example'), /"url":"\/fallback\/x"/);
});

/** A gateway of its own on a real socket, for tests that need other routes than the shared one. */
async function ownGateway(lines: string[]) {
  const own = createGateway(await config(lines), { logger });
  await own.startup();
  const ownServer = createServer(own.handle);
  const ownBase = await listen(ownServer);
  const stop = async () => {
    await close(ownServer);
    await own.shutdown(1_000);
  };
  return { port: Number(new URL(ownBase).port), stop };
}

test('an escaped unreserved letter (/%6Cogin, RFC 3986 6.2.2.2) matches the /login route and counts in its rateLimit', async () => {
  const fallback = await startUpstream();
  const own = await ownGateway([
    'routes:',
    '  - match: { path: /login }',
    `    upstream: ${upstream.url}`,
    '    rateLimit: { points: 1, duration: 60000 }',
    `  - upstream: ${fallback.url}`,
  ]);
  try {
    const statuses: string[] = [];
    for (const target of ['/login', '/%6Cogin', '/%6cogin/x']) {
      statuses.push((await sendRaw(own.port, `GET ${target} HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n`)).split('\r\n')[0]!);
    }
    assert.equal(statuses, ['HTTP/1.1 200 OK', 'HTTP/1.1 429 Too Many Requests', 'HTTP/1.1 429 Too Many Requests']);
    assert.is(fallback.requests.length, 0, 'an encoded form reached the catch-all route');
  } finally {
    await own.stop();
    await fallback.close();
  }
});

test('precedence by how the host matched: an exact-host route wins over a longer prefix that takes the host only through its wildcard', async () => {
  const own = await ownGateway([
    'routes:',
    '  - match: { path: /app/v2, host: [partner.test, "*.example.com"] }',
    `    upstream: ${upstream.url}`,
    '    upstreamPrefix: /tenants',
    '  - match: { path: /app, host: api.example.com }',
    `    upstream: ${upstream.url}`,
    '    upstreamPrefix: /api',
  ]);
  const seen = async (host: string) => {
    const response = await sendRaw(own.port, `GET /app/v2/users HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
    return /"url":"([^"]*)"/.exec(response)?.[1];
  };
  try {
    assert.is(await seen('api.example.com'), '/api/v2/users', 'the exact host outranks the wildcard match');
    assert.is(await seen('partner.test'), '/tenants/users', 'the exact host of the longer prefix still wins where it is exact');
    assert.is(await seen('b.example.com'), '/tenants/users');
  } finally {
    await own.stop();
  }
});

test('endpoints limited to a named listener answer only there; elsewhere the path goes to the routes', async () => {
  const admin = createGateway(
    await config([
      'status: { path: /_relay/status, listeners: [admin] }',
      'metrics: { path: /metrics, listeners: [admin] }',
      'routes:',
      `  - upstream: ${upstream.url}`,
    ], 'listen: [{ name: public, port: 0 }, { name: admin, port: 0 }]'),
    { logger, metrics: (res) => res.end('metrics here') },
  );
  await admin.startup();
  const publicServer = createServer(admin.handlerFor('public'));
  const adminServer = createServer(admin.handlerFor('admin'));
  const [publicBase, adminBase] = await Promise.all([listen(publicServer), listen(adminServer)]);
  try {
    assert.is(seenUrl(await fetchRaw(`${publicBase}/_relay/status.json`)), '/_relay/status.json');
    assert.is(seenUrl(await fetchRaw(`${publicBase}/metrics`)), '/metrics');
    assert.is((await fetchRaw(`${publicBase}/healthz`)).text, 'ok\n', 'health has no listeners list: every listener');
    const status = await fetchRaw(`${adminBase}/_relay/status.json`);
    assert.is(status.headers['content-type'], 'application/json');
    assert.is((await fetchRaw(`${adminBase}/metrics`)).text, 'metrics here');
  } finally {
    await Promise.all([close(publicServer), close(adminServer)]);
    await admin.shutdown(1_000);
  }
});

test('reload: a refused config changes nothing; an accepted one routes new requests', async () => {
  // Valid for the schema, refused by the headers() factory when the new relays are built.
  const refusedConfig = await config(['routes:', `  - upstream: ${upstream.url}`, "    headers: { extraRequest: { 'bad header': x } }"]);
  let refused: unknown;
  try {
    await gateway.reload(refusedConfig);
  } catch (error) {
    refused = error;
  }
  assert.instance(refused, ConfigError);
  assert.match((refused as ConfigError).message, /routes\[0\]\.headers: /);
  assert.is(gateway.current.number, 1);
  await gateway.reload(await config(['routes:', `  - upstream: ${upstream.url}`, '    upstreamPrefix: /v2']));
  assert.is(gateway.current.number, 2);
  assert.is(seenUrl(await fetchRaw(`${base}/x`)), '/v2/x');
  assert.is((await fetchRaw(`${base}/healthz`)).status, 200, 'health is back on by default');
});

test('a worker whose primary does not answer: the status JSON has its own figures, marked partial; /metrics 503', async () => {
  const view = {
    status: () => Promise.reject(new Error('the primary did not answer')),
    metrics: () => Promise.reject(new Error('the primary did not answer')),
  };
  let worker: Gateway | null = null;
  const metrics = await gatewayMetrics(() => worker, view);
  worker = createGateway(await config(['status: { path: /_status }', 'routes:', `  - upstream: ${upstream.url}`]), { logger, view, metrics });
  await worker.startup();
  const workerServer = createServer(worker.handle);
  const workerBase = await listen(workerServer);
  try {
    const status = JSON.parse((await fetchRaw(`${workerBase}/_status.json`)).text) as { partial: boolean; pid: number; workers: unknown[] };
    assert.is(status.partial, true);
    assert.is(status.pid, process.pid);
    assert.is(status.workers.length, 1);
    const metrics = await fetchRaw(`${workerBase}/metrics`);
    assert.is(metrics.status, 503);
    assert.is(metrics.text, 'metrics unavailable: the primary did not answer\n');
  } finally {
    await close(workerServer);
    await worker.shutdown(1_000);
  }
});

test('status(): requests and errors per route over the last minute', async () => {
  const status = gateway.status();
  assert.is(status.generation, 2);
  const route = status.routes[0]!;
  assert.is(route.requestsLastMinute, 1, 'the one request since the reload: the route is new');
  assert.is(route.errorsLastMinute, 0);
  assert.is(route.targets[0]!.health, 'healthy');
});

test.run();
