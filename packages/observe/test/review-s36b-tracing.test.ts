// Review s36 (second pass), @relay/observe tracing() with the OpenTelemetry SDK as an operator sets it
// up (BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter, the W3C propagator): what the
// upstream receives in traceparent/tracestate, and the CLIENT spans' HTTP semantic-convention
// attributes when balance() picks the member (with metrics' retry label beside it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SpanKind, SpanStatusCode, propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { createRelay } from '@relay/core';
import { balance } from '@relay/balance';
import { retry } from '@relay/retry';
import { closedPort, fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { observe, tracing } from '../src/index.js';

propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const clientSpans = (): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.CLIENT);
const traceparentOf = (span: ReadableSpan) => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`;

test.before.each(() => exporter.reset());

for (const [name, headers] of [
  ['no traceparent', { tracestate: 'vendor=stale' }],
  ['an invalid traceparent', { traceparent: '00-not-a-trace-id-01', tracestate: 'vendor=stale' }],
] as const) {
  test(`a client tracestate with ${name}: the relay starts a new trace and the upstream gets its traceparent without the client's tracestate`, async () => {
    // W3C Trace Context §4.2 (No traceparent received): "If a tracestate header is received without an
    // accompanying traceparent header, it is invalid and MUST be discarded." The relay's new trace has no
    // tracestate, so the upstream must get none: a tracestate belongs to the traceparent it came with.
    const upstream = await startUpstream();
    const t = tracing({ tracerProvider });
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] }));
    try {
      assert.is((await fetchRaw(`${served.url}/items`, { headers })).status, 200);
      assert.ok(await waitFor(() => clientSpans().length === 1));
      const span = clientSpans()[0]!;
      const seen = upstream.requests[0]!.headers;
      assert.is(seen.traceparent, traceparentOf(span), 'the upstream continues the relay\'s new trace');
      assert.is(seen.tracestate, undefined, `the client's tracestate "${String(seen.tracestate)}" went upstream beside a traceparent it never belonged to`);
    } finally {
      await served.close();
      await upstream.close();
    }
  });
}

/** A relay whose pool is innermost (after obs.attempt) over a member that answers 503 and one that answers 200. */
async function innermostPool() {
  const bad = await startUpstream((_req, res) => res.writeHead(503, { 'content-length': 0 }).end());
  const good = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'));
  const pool = balance({ targets: [bad.url, good.url], outlier: false });
  const registry = new Registry();
  const obs = observe({ metrics: { registry, relay: 'b' }, tracing: { tracerProvider } });
  // balance()'s README: targetBaseUrl's "origin is only used when balance() is not in the pipeline".
  const unused = `http://127.0.0.1:${await closedPort()}`;
  const served = await serveRelay(createRelay({ targetBaseUrl: unused, stages: [obs.request, retry({ maxRetries: 1, backoffFactor: 1 }), obs.attempt, pool] }));
  return {
    bad,
    good,
    registry,
    served,
    close: async () => {
      pool.stop();
      await served.close();
      await bad.close();
      await good.close();
    },
  };
}

test('balance() innermost (its README: "Innermost, after retry()"): each CLIENT span names the member it went to in url.full, server.address and server.port', async () => {
  // semconv HTTP client span: server.address, server.port and url.full (Required) are the server the
  // request went to. review-s35 fixed the access line and the attempt/request counters for this order
  // (ProxyResponse.target); the spans still name targetBaseUrl, an address nothing listens on here.
  const setup = await innermostPool();
  try {
    // Round robin starts at `bad`: a 503, then the retry goes to `good`.
    assert.is((await fetchRaw(`${setup.served.url}/x`)).status, 200);
    assert.ok(await waitFor(() => clientSpans().length === 2));
    const spans = clientSpans().map((span) => ({
      status: span.attributes['http.response.status_code'],
      url: span.attributes['url.full'],
      address: span.attributes['server.address'],
      port: span.attributes['server.port'],
      error: span.status.code === SpanStatusCode.ERROR,
    }));
    spans.sort((a, b) => Number(a.status) - Number(b.status));
    assert.equal(spans, [
      { status: 200, url: `${setup.good.url}/x`, address: '127.0.0.1', port: setup.good.port, error: false },
      { status: 503, url: `${setup.bad.url}/x`, address: '127.0.0.1', port: setup.bad.port, error: true },
    ]);
  } finally {
    await setup.close();
  }
});

test('balance() innermost: relay_upstream_retries_total counts the retry on the member it went to, not on targetBaseUrl', async () => {
  // docs/observability.md: `target` is "the one a balance() or router() stage chose for the attempt,
  // before or after m.attempt"; relay_upstream_attempts_total already says so for this order.
  const setup = await innermostPool();
  try {
    assert.is((await fetchRaw(`${setup.served.url}/x`)).status, 200);
    const text = await setup.registry.metrics();
    const lines = (prefix: string) => text.split('\n').filter((line) => line.startsWith(prefix));
    assert.equal(lines('relay_upstream_attempts_total{').sort(), [
      `relay_upstream_attempts_total{relay="b",target="${setup.bad.url}",outcome="5xx"} 1`,
      `relay_upstream_attempts_total{relay="b",target="${setup.good.url}",outcome="2xx"} 1`,
    ].sort());
    assert.equal(lines('relay_upstream_retries_total{'), [`relay_upstream_retries_total{relay="b",target="${setup.good.url}"} 1`]);
  } finally {
    await setup.close();
  }
});

test.run();
