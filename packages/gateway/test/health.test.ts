// Route counters and target health in-process, on real sockets: every failed attempt (retries
// included) marks the target unhealthy through the transport's failure log line, the next answer
// marks it healthy again, and the counting never changes what the client gets.
import { createServer, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, closedPort, fetchRaw, listen, startFaultyUpstream, startUpstream, type FaultyUpstream, type Upstream } from '@relay/testkit';
import { createGateway, loadConfig, type Gateway } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { configDir } from './bin.js';

const files = configDir();
const lines: string[] = [];
const logger = createLogger({ level: 'debug', stream: { write: (line: string) => lines.push(line) > 0 } as unknown as NodeJS.WritableStream });
let faulty: FaultyUpstream;
let unavailable: Upstream;
let gateway: Gateway;
let server: Server;
let base: string;

test.before(async () => {
  faulty = await startFaultyUpstream();
  unavailable = await startUpstream((_req, res) => res.writeHead(503, { 'content-length': 0 }).end());
  const config = files.write(
    'health.yaml',
    [
      'listen: [{ port: 0 }]',
      'routes:',
      '  - name: flaky',
      '    match: { path: /flaky }',
      `    upstream: ${faulty.url}`,
      '    retry: { maxRetries: 2, backoffFactor: 1, jitter: false }',
      '  - name: down',
      '    match: { path: /down, methods: [GET, HEAD] }',
      `    upstream: http://127.0.0.1:${await closedPort()}`,
      '  - name: unavailable',
      '    match: { path: /unavailable }',
      `    upstream: ${unavailable.url}`,
      '',
    ].join('\n'),
  );
  gateway = createGateway(await loadConfig(config), { logger });
  await gateway.startup();
  server = createServer(gateway.handle);
  base = await listen(server);
});

test.after(async () => {
  await close(server);
  await gateway.shutdown(1_000);
  await Promise.all([faulty.close(), unavailable.close()]);
  files.cleanup();
});

function route(name: string) {
  const found = gateway.status().routes.find((entry) => entry.name === name);
  assert.ok(found, `route ${name} in the status`);
  return found;
}

function live(name: string) {
  return gateway.current.routes.find((entry) => entry.label === name)!;
}

test('before any request: health unknown, no counts', () => {
  const flaky = route('flaky');
  assert.is(flaky.targets[0]!.health, 'unknown');
  assert.is(flaky.requestsLastMinute, 0);
});

test('every failed attempt of a retried request marks the target; the request counts once, as an error', async () => {
  const response = await fetchRaw(`${base}/flaky/reset-before-head`);
  assert.is(response.status, 502);
  const flaky = route('flaky');
  assert.is(flaky.targets[0]!.health, 'unhealthy');
  assert.is(flaky.targets[0]!.lastError, 'ERR_UPSTREAM_RESET');
  assert.is(live('flaky').health.failures, 3, 'the first attempt and both retries');
  assert.is(flaky.requestsLastMinute, 1);
  assert.is(flaky.errorsLastMinute, 1);
  assert.ok(lines.some((line) => line.includes('"route":"flaky"') && line.includes('upstream request failed')), 'the failure is still logged, with its route');
});

test('the next answer marks the target healthy again', async () => {
  assert.is((await fetchRaw(`${base}/flaky/ok`)).status, 200);
  const flaky = route('flaky');
  assert.is(flaky.targets[0]!.health, 'healthy');
  assert.is(flaky.targets[0]!.lastError, null);
  assert.is(flaky.targets[0]!.lastStatus, 200);
  assert.is(flaky.requestsLastMinute, 2);
  assert.is(flaky.errorsLastMinute, 1);
});

test('a refused connection without retry: unhealthy, ERR_UPSTREAM_UNREACHABLE, one error', async () => {
  assert.is((await fetchRaw(`${base}/down`)).status, 502);
  const down = route('down');
  assert.is(down.targets[0]!.health, 'unhealthy');
  assert.is(down.targets[0]!.lastError, 'ERR_UPSTREAM_UNREACHABLE');
  assert.is(down.errorsLastMinute, 1);
});

test('a 503 answer: unhealthy with its status, counted as an error', async () => {
  assert.is((await fetchRaw(`${base}/unavailable`)).status, 503);
  const target = route('unavailable').targets[0]!;
  assert.is(target.health, 'unhealthy');
  assert.is(target.lastStatus, 503);
  assert.is(route('unavailable').errorsLastMinute, 1);
});

test('a method the route does not take: 405 with Allow, not counted on the route', async () => {
  const response = await fetchRaw(`${base}/down`, { method: 'POST' });
  assert.is(response.status, 405);
  assert.is(response.headers.allow, 'GET, HEAD');
  assert.is(route('down').requestsLastMinute, 1);
});

test('an endpoint path with a query still answers; a longer path is routed', async () => {
  assert.is((await fetchRaw(`${base}/healthz?probe=1`)).text, 'ok\n');
  assert.is((await fetchRaw(`${base}/healthzx`)).status, 404);
});

test.run();
