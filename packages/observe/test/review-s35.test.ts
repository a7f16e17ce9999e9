// Review s35: observe's outputs for what core gained today, through real traffic.
// Each test here failed when written; the name is the expected behaviour.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRelay } from '@relay/core';
import { balance } from '@relay/balance';
import { retry } from '@relay/retry';
import { closedPort, fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { observe } from '../src/index.js';
import { scripted } from './helpers.js';

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

function observed() {
  const logger = memoryLogger();
  const registry = new Registry();
  const obs = observe({ accessLog: { logger }, metrics: { registry, relay: 'r' }, tracing: { tracerProvider } });
  const lines = () => logger.lines.filter((line) => line.message === 'request').map((line) => line.fields);
  return { logger, registry, obs, lines };
}

async function series(registry: Registry, name: string): Promise<Array<{ labels: Record<string, unknown>; value: number }>> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values ?? []).map((v) => ({ labels: v.labels as Record<string, unknown>, value: v.value }));
}

test.before.each(() => exporter.reset());

test("relay.fetch answering an upstream 205 with a null body: the line has code null (README: 'code … when the request failed or its body broke off; null otherwise') and the CLIENT span no error (HTTP client span semconv: 2xx leaves the status unset)", async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(205, { 'content-length': '0' });
    res.end();
  });
  const s = observed();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: s.logger, stages: [s.obs.request, s.obs.attempt] });
  try {
    const response = await relay.fetch(new Request('http://relay.local/form', { method: 'POST', body: 'x' }));
    assert.is(response.status, 205);
    assert.is(response.body, null);
    assert.ok(await waitFor(() => s.lines().length === 1 && exporter.getFinishedSpans().length === 1));
    const line = s.lines()[0]!;
    const span = exporter.getFinishedSpans().find((each) => each.kind === SpanKind.CLIENT)!;
    assert.equal(
      { status: line.status, code: line.code, bytesOut: line.bytesOut, spanStatus: span.status.code, errorType: span.attributes['error.type'] },
      { status: 205, code: null, bytesOut: 0, spanStatus: SpanStatusCode.UNSET, errorType: undefined },
      'an upstream that answered a whole 205 is logged and traced as ERR_UPSTREAM_RESET ("response body broke off")',
    );
  } finally {
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test("a retried request across balance() members with observe's attempt stage before the pool: the line's upstream and the target labels name the member that answered (ProxyResponse.target), not targetBaseUrl", async () => {
  const failing = await scripted([503]);
  const healthy = await scripted([200]);
  // targetBaseUrl only gives the path prefix (docs/balancing.md): nothing listens there.
  const unused = `http://127.0.0.1:${await closedPort()}`;
  const s = observed();
  const pool = balance({ targets: [failing.url, healthy.url] });
  // observe: "attempt last … innermost is best"; balance: "Innermost, after retry()": here the pool is innermost.
  const served = await serveRelay(createRelay({ targetBaseUrl: unused, logger: s.logger, stages: [s.obs.request, retry({ maxRetries: 1, backoffFactor: 1 }), s.obs.attempt, pool] }));
  try {
    const first = await fetchRaw(`${served.url}/x`);
    const second = await fetchRaw(`${served.url}/x`);
    assert.equal([first.status, second.status], [200, 200]);
    assert.ok(await waitFor(() => s.lines().length === 2));
    assert.equal(
      s.lines().map((line) => ({ upstream: line.upstream, attempts: line.attempts })),
      [{ upstream: healthy.url, attempts: 2 }, { upstream: healthy.url, attempts: 1 }],
      `the access line names ${unused}, an address no attempt went to`,
    );
    const requests = await series(s.registry, 'relay_requests_total');
    assert.equal(requests.map((each) => each.labels.target), [healthy.url], 'relay_requests_total is labelled with targetBaseUrl');
    const attempts = await series(s.registry, 'relay_upstream_attempts_total');
    const byOutcome = Object.fromEntries(attempts.map((each) => [each.labels.outcome, each.labels.target]));
    assert.equal(byOutcome, { '5xx': failing.url, '2xx': healthy.url }, 'relay_upstream_attempts_total is labelled with targetBaseUrl');
  } finally {
    await served.close();
    await failing.close();
    await healthy.close();
  }
});

test.run();
