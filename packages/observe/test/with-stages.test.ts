// @relay/observe combined with the stages a gateway uses (limits, body, retry with a
// replayed body, balance pools, routing), relay.fetch, and relay.dispatch with an onError handler.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { SpanKind, propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRelay, type Stage } from '@relay/core';
import { balance } from '@relay/balance';
import { bodyLimit } from '@relay/body';
import { rateLimit } from '@relay/limits';
import { retry } from '@relay/retry';
import { rewritePath, routes } from '@relay/routing';
import { close, closedPort, fetchRaw, listen, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { observe } from '../src/index.js';
import { postChunked } from './helpers.js';

propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function observed(routeTemplates?: string[]) {
  const lines: Record<string, unknown>[] = [];
  const registry = new Registry();
  const obs = observe({
    accessLog: { stream: { write: (line: string) => lines.push(JSON.parse(line)) } },
    metrics: { registry, relay: 'gw', ...(routeTemplates ? { routes: routeTemplates } : {}) },
    tracing: { tracerProvider },
  });
  return { obs, lines, registry };
}

test('rateLimit 429: logged and counted as 429, no upstream attempt, no span', async () => {
  exporter.reset();
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'));
  const { obs, lines, registry } = observed();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [obs.request, rateLimit({ points: 1, duration: 60_000 }), retry({ maxRetries: 1 }), obs.attempt] }));
  try {
    assert.is((await fetchRaw(`${served.url}/a`)).status, 200);
    const refused = await fetchRaw(`${served.url}/a`);
    assert.is(refused.status, 429);
    assert.ok(await waitFor(() => lines.length === 2));
    const line = lines[1]!;
    assert.equal({ status: line.status, attempts: line.attempts, ttfb: line.ttfb, bytesOut: line.bytesOut }, { status: 429, attempts: 0, ttfb: null, bytesOut: refused.body.length });
    const text = await registry.metrics();
    assert.is(value(text, `relay_requests_total{relay="gw",route="",method="GET",status_class="4xx",target="${upstream.url}"}`), 1);
    assert.is(value(text, `relay_upstream_attempts_total{relay="gw",target="${upstream.url}",outcome="2xx"}`), 1);
    assert.not.ok(text.includes('outcome="4xx"'), 'the 429 is not an upstream attempt');
    assert.is(upstream.requests.length, 1);
    assert.ok(await waitFor(() => exporter.getFinishedSpans().length === 1));
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('bodyLimit 413: a declared and a counted (chunked) oversize body are both logged and counted as the 413 the client got', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'), { streaming: false });
  const { obs, lines, registry } = observed();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [obs.request, bodyLimit({ maxBytes: 1000 }), obs.attempt] }));
  try {
    const declared = await fetchRaw(`${served.url}/up`, { method: 'POST', body: Buffer.alloc(5000, 'x') });
    assert.is(declared.status, 413);
    // Chunked: no Content-Length, counted as it streams.
    const chunked = await postChunked(`${served.url}/up`);
    assert.is(chunked, 413);
    assert.ok(await waitFor(() => lines.length === 2));
    const text = await registry.metrics();
    assert.is(value(text, `relay_requests_total{relay="gw",route="",method="POST",status_class="4xx",target="${upstream.url}"}`), 2);
    assert.is(lines[0]!.attempts, 0);
    assert.equal(lines.map((line) => line.status), [413, 413]);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('retry with a replayed POST body: bytesIn once, two attempts, request body bytes once, upstream got the body twice', async () => {
  let count = 0;
  const upstream = await startUpstream((_req, res) => {
    const status = count++ === 0 ? 503 : 200;
    res.writeHead(status, { 'content-length': 2 }).end('ok');
  });
  const { obs, lines, registry } = observed();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [obs.request, retry({ maxRetries: 2, methods: ['POST'], backoffFactor: 1 }), obs.attempt] }));
  try {
    const body = Buffer.alloc(3000, 'b');
    assert.is((await fetchRaw(`${served.url}/orders`, { method: 'POST', body })).status, 200);
    assert.ok(await waitFor(() => lines.length === 1));
    assert.equal(upstream.requests.map((seen) => seen.body.length), [3000, 3000]);
    const line = lines[0]!;
    assert.equal({ bytesIn: line.bytesIn, attempts: line.attempts, status: line.status }, { bytesIn: 3000, attempts: 2, status: 200 });
    const text = await registry.metrics();
    assert.is(value(text, 'relay_request_body_bytes_total{relay="gw"}'), 3000);
    assert.is(value(text, `relay_upstream_retries_total{relay="gw",target="${upstream.url}"}`), 1);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('balance pool: the line names the last attempt\'s target, each span its own server.address/port, attempts labelled per target', async () => {
  exporter.reset();
  const bad = await startUpstream((_req, res) => res.writeHead(503, { 'content-length': 0 }).end());
  const good = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'));
  const pool = balance({ targets: [bad.url, good.url], outlier: false });
  const { obs, lines, registry } = observed();
  const served = await serveRelay(createRelay({ targetBaseUrl: bad.url, stages: [obs.request, retry({ maxRetries: 1, backoffFactor: 1 }), pool, obs.attempt] }));
  try {
    // Round robin starts at bad: 503 then good.
    assert.is((await fetchRaw(`${served.url}/x`)).status, 200);
    assert.ok(await waitFor(() => lines.length === 1 && exporter.getFinishedSpans().length === 2));
    assert.is(lines[0]!.upstream, good.url);
    const ports = exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.CLIENT).map((span) => `${span.attributes['http.response.status_code']}:${span.attributes['server.port']}`).sort();
    assert.equal(ports, [`200:${good.port}`, `503:${bad.port}`].sort());
    const text = await registry.metrics();
    assert.is(value(text, `relay_upstream_attempts_total{relay="gw",target="${bad.url}",outcome="5xx"}`), 1);
    assert.is(value(text, `relay_upstream_attempts_total{relay="gw",target="${good.url}",outcome="2xx"}`), 1);
    assert.is(value(text, `relay_requests_total{relay="gw",route="",method="GET",status_class="2xx",target="${good.url}"}`), 1);
  } finally {
    pool.stop();
    await served.close();
    await bad.close();
    await good.close();
  }
});

test('routing: route templates label the client path (mount included), not the rewritten upstream path', async () => {
  const upstream = await startUpstream((req, res) => res.writeHead(200, { 'content-length': Buffer.byteLength(req.url ?? '') }).end(req.url));
  const { obs, registry } = observed(['/api/users/:id', '/api/static/*']);
  const relay = createRelay({
    targetBaseUrl: upstream.url,
    mountPath: '/api',
    stages: [obs.request, routes([{ when: { path: '/users/*' }, stages: [rewritePath({ '/users': '/v2/people' })] }, { stages: [] }]), obs.attempt],
  });
  const served = await serveRelay(relay);
  try {
    assert.is((await fetchRaw(`${served.url}/api/users/7?x=1`)).text, '/v2/people/7?x=1');
    await fetchRaw(`${served.url}/api/users/8/`);
    await fetchRaw(`${served.url}/api/static/css/a.css`);
    await fetchRaw(`${served.url}/api/other/1`);
    const text = await registry.metrics();
    const t = upstream.url;
    assert.is(value(text, `relay_requests_total{relay="gw",route="/api/users/:id",method="GET",status_class="2xx",target="${t}"}`), 2);
    assert.is(value(text, `relay_requests_total{relay="gw",route="/api/static/*",method="GET",status_class="2xx",target="${t}"}`), 1);
    assert.is(value(text, `relay_requests_total{relay="gw",route="other",method="GET",status_class="2xx",target="${t}"}`), 1);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('relay.dispatch with an onError handler that answers 503 itself: the line and the metrics say what the client got', async () => {
  const { obs, lines, registry } = observed();
  const target = `http://127.0.0.1:${await closedPort()}`;
  const relay = createRelay({ targetBaseUrl: target, stages: [obs.request, obs.attempt] });
  await relay.startup();
  const fallback = 'maintenance: try again soon\n';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    relay.dispatch(req, res, {
      path: req.url!.slice('/svc'.length),
      mountPath: '/svc',
      onError: () => res.writeHead(503, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(fallback) }).end(fallback),
    });
  });
  const url = await listen(server);
  try {
    const answer = await fetchRaw(`${url}/svc/items`);
    assert.is(answer.status, 503);
    assert.is(answer.text, fallback);
    assert.ok(await waitFor(() => lines.length === 1));
    const line = lines[0]!;
    const text = await registry.metrics();
    assert.equal(
      { status: line.status, bytesOut: line.bytesOut, code: line.code, counted503as: text.includes('status_class="5xx"') ? '5xx' : 'none' },
      { status: 503, bytesOut: Buffer.byteLength(fallback), code: 'ERR_UPSTREAM_UNREACHABLE', counted503as: '5xx' },
    );
  } finally {
    await relay.shutdown({ timeout: 500 });
    await close(server);
  }
});

test('relay.dispatch with an onError handler that serves a 200 fallback page: not logged as a 502', async () => {
  const { obs, lines, registry } = observed();
  const target = `http://127.0.0.1:${await closedPort()}`;
  const relay = createRelay({ targetBaseUrl: target, stages: [obs.request, obs.attempt] });
  await relay.startup();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    relay.dispatch(req, res, { path: req.url!, mountPath: '', onError: () => res.writeHead(200, { 'content-length': 8 }).end('fallback') });
  });
  const url = await listen(server);
  try {
    assert.is((await fetchRaw(`${url}/page`)).status, 200);
    assert.ok(await waitFor(() => lines.length === 1));
    const text = await registry.metrics();
    assert.equal({ status: lines[0]!.status, fivexx: text.includes('status_class="5xx"') }, { status: 200, fivexx: false });
  } finally {
    await relay.shutdown({ timeout: 500 });
    await close(server);
  }
});

test('relay.fetch: a line with the status, bytes, the given client address; an aborted signal before the head is 499', async () => {
  let release: (() => void) | null = null;
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/slow') {
      release = () => res.writeHead(200, { 'content-length': 2 }).end('ok');
      return;
    }
    res.writeHead(200, { 'content-length': 5 }).end('hello');
  });
  const { obs, lines, registry } = observed();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [obs.request, obs.attempt] });
  await relay.startup();
  try {
    const response = await relay.fetch(new Request('http://gw.local/hi', { method: 'POST', body: 'abc' }), { address: '10.1.2.3' });
    assert.is(await response.text(), 'hello');
    assert.ok(await waitFor(() => lines.length === 1));
    assert.equal(
      { status: lines[0]!.status, bytesIn: lines[0]!.bytesIn, bytesOut: lines[0]!.bytesOut, client: lines[0]!.client, path: lines[0]!.path },
      { status: 200, bytesIn: 3, bytesOut: 5, client: '10.1.2.3', path: '/hi' },
    );
    const controller = new AbortController();
    const pending = relay.fetch(new Request('http://gw.local/slow', { signal: controller.signal }));
    pending.catch(() => {});
    assert.ok(await waitFor(() => upstream.requests.length === 2));
    controller.abort();
    await pending.then(
      (r) => r.body?.cancel(),
      () => undefined,
    );
    assert.ok(await waitFor(() => lines.length === 2));
    assert.equal({ status: lines[1]!.status, code: lines[1]!.code }, { status: 499, code: 'ERR_CLIENT_ABORTED' });
    const text = await registry.metrics();
    assert.is(value(text, 'relay_requests_in_flight{relay="gw"}'), 0);
  } finally {
    (release as (() => void) | null)?.();
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

void (null as unknown as Stage);
test.run();
