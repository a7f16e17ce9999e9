// The stage packages that landed after the gateway (limits, body, observe), configured from a file.
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { register } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { ConfigError, createGateway, loadConfig, type Gateway } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { configDir } from './bin.js';

const files = configDir();
// What a preloaded OpenTelemetry SDK does: the global provider the `tracing:` key's spans go to.
const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
const lines: string[] = [];
const logger = createLogger({ level: 'info', stream: { write: (line: string) => lines.push(line) } as unknown as NodeJS.WritableStream });
let upstream: Upstream;
let gateway: Gateway;
let server: Server;
let base: string;

function write(body: string[]): string {
  return files.write(`features-${Math.random().toString(36).slice(2)}.yaml`, ['listen: [{ port: 0 }]', ...body, ''].join('\n'));
}

test.before(async () => {
  upstream = await startUpstream((req, res) => {
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ url: req.url, padding: 'x'.repeat(4096) }));
  });
  const config = await loadConfig(
    write([
      'health: false',
      'routes:',
      '  - name: limited',
      '    match: { path: /limited }',
      `    upstream: ${upstream.url}`,
      '    rateLimit: { points: 2, duration: 60000, name: per-client }',
      '  - name: api',
      `    upstream: ${upstream.url}`,
      '    bodyLimit: { maxBytes: 16 }',
      '    compress: true',
      '    requestId: true',
      '    accessLog: true',
      '    metrics: true',
      '    tracing: true',
      '  - name: orders',
      '    match: { path: /orders }',
      `    upstream: ${upstream.url}`,
      '    metrics: true',
    ]),
  );
  gateway = createGateway(config, { logger });
  await gateway.startup();
  server = createServer(gateway.handle);
  base = await listen(server);
});

test.after(async () => {
  await close(server);
  await gateway.shutdown(1_000);
  await upstream.close();
  files.cleanup();
});

test('rateLimit: two requests pass, the third gets 429 with the IETF fields', async () => {
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push(await fetchRaw(`${base}/limited/x`));
  assert.equal(statuses.map((r) => r.status), [200, 200, 429]);
  assert.match(String(statuses[0]!.headers['ratelimit-policy']), /^"per-client";q=2;w=60$/);
  assert.ok(statuses[2]!.headers['retry-after'] !== undefined, 'Retry-After on the refusal');
});

test('bodyLimit: a declared body over maxBytes gets 413 and never reaches the upstream', async () => {
  const before = upstream.requests.length;
  const response = await fetchRaw(`${base}/upload`, { method: 'POST', body: 'x'.repeat(64) });
  assert.is(response.status, 413);
  assert.is(upstream.requests.length, before);
});

test('compress: gzip toward a client that asks for it, with Vary', async () => {
  const response = await fetchRaw(`${base}/doc`, { headers: { 'accept-encoding': 'gzip' } });
  assert.is(response.headers['content-encoding'], 'gzip');
  assert.match(String(response.headers.vary), /accept-encoding/i);
  assert.is(JSON.parse(gunzipSync(response.body).toString()).url, '/doc');
});

test('accessLog and metrics: a line per request in the gateway log, series in the registry /metrics serves', async () => {
  await fetchRaw(`${base}/seen?token=secret`);
  const parsed = lines.flatMap((line) => line.split('\n')).filter((line) => line.startsWith('{'));
  const access = parsed.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => String(line.path).startsWith('/seen'));
  assert.ok(access !== undefined, 'an access line for /seen');
  assert.is(access!.status, 200);
  assert.not.match(JSON.stringify(access), /secret/, 'the query value is redacted');
  // The series the bin's `/metrics` serves: prom-client's default registry (createGateway alone serves no endpoint).
  const text = await register.metrics();
  assert.match(text, /relay_requests_total\{[^}]*status_class="2xx"[^}]*\} \d+/);
});

test('two routes to one upstream: their series are told apart by the route name, and no label names the upstream\'s address', async () => {
  await fetchRaw(`${base}/orders/1`);
  await fetchRaw(`${base}/orders/2`);
  const text = await register.metrics();
  assert.match(text, /relay_requests_total\{relay="orders",[^}]*\} 2\n/);
  assert.match(text, /relay_requests_total\{relay="api",[^}]*\} \d+/);
  // No label anywhere names the upstream (`/metrics` answers on public listeners by default).
  assert.not.ok(text.includes(new URL(upstream.url).host), text);
});

test('requestId and tracing beside accessLog: the line carries the client\'s X-Request-Id and the attempt span\'s trace', async () => {
  exporter.reset();
  const response = await fetchRaw(`${base}/traced`, { headers: { 'x-request-id': 'req-42' } });
  assert.is(response.headers['x-request-id'], 'req-42');
  assert.is(upstream.requests.at(-1)!.headers['x-request-id'], 'req-42');
  const accessLine = () => lines.flatMap((line) => line.split('\n')).filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.path === '/traced');
  assert.ok(await waitFor(() => accessLine() !== undefined && exporter.getFinishedSpans().length === 1));
  const access = accessLine()!;
  const span = exporter.getFinishedSpans()[0]!;
  assert.equal([access.requestId, access.traceId, access.spanId], ['req-42', span.spanContext().traceId, span.spanContext().spanId]);
});

test('a misspelled key of a new feature is a config error naming it', async () => {
  const file = write(['routes:', `  - upstream: ${upstream.url}`, '    rateLimit: { points: 1, duration: 1000, brust: 2 }']);
  try {
    await loadConfig(file);
    assert.unreachable('accepted brust');
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.match((error as Error).message, /routes\[0\]\.rateLimit/);
    assert.match((error as Error).message, /brust/);
  }
});

test('rateLimit list: unnamed limits are named by their rate, a taken name gets -2; two limits with one name are refused', async () => {
  const file = write([
    'routes:', `  - upstream: ${upstream.url}`,
    '    rateLimit: [{ points: 5, duration: 1000 }, { points: 5, duration: 1000, key: route }, { points: 100, duration: 1500, name: api }]',
  ]);
  const named = createGateway(await loadConfig(file), { logger });
  const listening = createServer(named.handle);
  const url = await listen(listening);
  try {
    const response = await fetchRaw(`${url}/`);
    assert.is(response.headers['ratelimit-policy'], '"api";q=100;w=2, "5-per-1s-2";q=5;w=1, "5-per-1s";q=5;w=1');
  } finally {
    await close(listening);
    await named.shutdown(500);
  }
  const twice = write(['routes:', `  - upstream: ${upstream.url}`, '    rateLimit: [{ points: 5, duration: 1000, name: a }, { points: 9, duration: 1000, name: a }]']);
  try {
    createGateway(await loadConfig(twice), { logger });
    assert.unreachable('accepted two limits named a');
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.match((error as Error).message, /routes\[0\]\.rateLimit.*two limits are named "a"/);
  }
});

test.run();
