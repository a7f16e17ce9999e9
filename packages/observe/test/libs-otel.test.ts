// @relay/observe's tracing under a real OpenTelemetry Node setup: NodeTracerProvider (the
// AsyncLocalStorage context manager, W3C propagation) and @opentelemetry/instrumentation-http
// patching node:http for the relay's server (SERVER span) and its outgoing requests (CLIENT span).
//
// ESM: the instrumentation must be enabled before the modules that import node:http load, so
// everything that does (core, testkit, the helpers) is imported dynamically after
// registerInstrumentations(); the prototype patches and syncBuiltinESMExports() make it work.
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
/** The relays' ports: the test's own client requests to them are not traced. */
const relayPorts = new Set<number>();
registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [
    new HttpInstrumentation({
      // The test's own client is not traced: the relay's SERVER span is a root, as behind a real client.
      ignoreOutgoingRequestHook: (options) => relayPorts.has(Number(options.port)),
    }),
  ],
});
createRequire(import.meta.url)('node:http');
syncBuiltinESMExports();

const { createRelay } = await import('@relay/core');
const { retry } = await import('@relay/retry');
const { closedPort, fetchRaw, serveRelay, waitFor } = await import('@relay/testkit');
const { accessLog, observe, tracing } = await import('../src/index.js');
const { echoSession, scripted, serveWithUpgrades, startEchoWs } = await import('./helpers.js');

const client = {};
/** Marks a served relay's port as the test client's destination, not traced. */
function untraced<T extends { url: string }>(served: T): T {
  relayPorts.add(Number(new URL(served.url).port));
  return served;
}
const ours = (span: ReadableSpan) => span.instrumentationScope.name === '@relay/observe';
const http = (span: ReadableSpan) => span.instrumentationScope.name === '@opentelemetry/instrumentation-http';
const spanId = (span: ReadableSpan) => span.spanContext().spanId;
const traceId = (span: ReadableSpan) => span.spanContext().traceId;

test.before.each(() => {
  exporter.reset();
});

test('instrumentation-http SERVER span: a CLIENT span per attempt as its child, resend_count, each upstream traceparent in the same trace, once', async () => {
  const upstream = await scripted([503, 200]);
  const written: string[] = [];
  const obs = observe({ tracing: true, accessLog: { stream: { write: (line: string) => written.push(line) } } });
  const served = untraced(await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [obs.request, retry({ maxRetries: 1, backoffFactor: 1 }), obs.attempt] })));
  assert.is((await fetchRaw(`${served.url}/items?secret=1`, { headers: client })).status, 200);
  // Relay SERVER, 2 relay CLIENT, 2 instrumentation CLIENT, 2 upstream SERVER.
  const settled = await waitFor(() => exporter.getFinishedSpans().length >= 7 && written.length === 1);
  assert.ok(settled, `spans: ${exporter.getFinishedSpans().length}`);
  const spans = exporter.getFinishedSpans();
  // The relay's SERVER span is the root (the upstream's, in the same process, are children; both see the client's Host).
  const server = spans.find((span) => span.kind === SpanKind.SERVER && span.parentSpanContext === undefined)!;
  assert.ok(server, 'instrumentation-http made the relay SERVER span');
  assert.is(server.parentSpanContext, undefined);
  const attempts = spans.filter((span) => ours(span) && span.kind === SpanKind.CLIENT).sort((a, b) => Number(a.attributes['http.request.resend_count'] ?? 0) - Number(b.attributes['http.request.resend_count'] ?? 0));
  assert.is(attempts.length, 2);
  for (const attempt of attempts) {
    assert.is(attempt.parentSpanContext?.spanId, spanId(server));
    assert.is(traceId(attempt), traceId(server));
    assert.is(attempt.attributes['url.full'], `${upstream.url}/items`);
  }
  assert.is(attempts[0]!.attributes['http.request.resend_count'], undefined);
  assert.is(attempts[0]!.attributes['error.type'], '503');
  assert.is(attempts[0]!.status.code, SpanStatusCode.ERROR);
  assert.is(attempts[1]!.attributes['http.request.resend_count'], 1);
  assert.is(attempts[1]!.status.code, SpanStatusCode.UNSET);
  // One traceparent per upstream request, the id of a span of the same trace, whose parent is the attempt span.
  const byId = new Map(spans.map((span) => [spanId(span), span]));
  upstream.requests.forEach((seen, index) => {
    const raw = seen.rawHeaders.filter((_value, at) => at % 2 === 0 && seen.rawHeaders[at]!.toLowerCase() === 'traceparent');
    assert.is(raw.length, 1, 'one traceparent header');
    const [, trace, parent] = String(seen.headers.traceparent).split('-');
    assert.is(trace, traceId(server));
    const sent = byId.get(parent!);
    assert.ok(sent, `traceparent ${seen.headers.traceparent} is a recorded span`);
    assert.ok(sent === attempts[index] || (http(sent!) && sent!.parentSpanContext?.spanId === spanId(attempts[index]!)), 'the attempt span or its transport child');
  });
  // The upstream's own SERVER spans are children of what it received.
  const upstreamServers = spans.filter((span) => span.kind === SpanKind.SERVER && span !== server);
  assert.is(upstreamServers.length, 2);
  for (const span of upstreamServers) assert.is(traceId(span), traceId(server));
  const line = JSON.parse(written[0]!) as { traceId: string; spanId: string };
  assert.is(line.traceId, traceId(server));
  assert.is(line.spanId, spanId(server));
  await served.close();
  await upstream.close();
});

test('instrumentation-http: a refused connection and a final 5xx mark the attempt span (error.type, ERROR), parent the SERVER span', async () => {
  const port = await closedPort();
  const down = observe({ tracing: true });
  const servedDown = untraced(await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, stages: [down.request, down.attempt] })));
  assert.is((await fetchRaw(`${servedDown.url}/down`, { headers: client })).status, 502);
  const upstream = await scripted([500]);
  const five = observe({ tracing: true });
  const servedFive = untraced(await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [five.request, five.attempt] })));
  assert.is((await fetchRaw(`${servedFive.url}/five`, { headers: client })).status, 500);
  assert.ok(await waitFor(() => exporter.getFinishedSpans().filter((span) => ours(span)).length === 2 && exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.SERVER).length === 3));
  const spans = exporter.getFinishedSpans();
  const serverOf = (path: string) => spans.find((span) => span.kind === SpanKind.SERVER && span.parentSpanContext === undefined && span.attributes['url.path'] === path)!;
  const attemptUnder = (server: ReadableSpan) => spans.find((span) => ours(span) && span.parentSpanContext?.spanId === spanId(server))!;
  const refused = attemptUnder(serverOf('/down'));
  assert.ok(refused, 'the refused attempt is a child of the SERVER span');
  assert.is(refused.attributes['error.type'], 'ERR_UPSTREAM_UNREACHABLE');
  assert.is(refused.status.code, SpanStatusCode.ERROR);
  assert.is(refused.attributes['http.response.status_code'], undefined);
  const failed = attemptUnder(serverOf('/five'));
  assert.is(failed.attributes['http.response.status_code'], 500);
  assert.is(failed.attributes['error.type'], '500');
  assert.is(failed.status.code, SpanStatusCode.ERROR);
  await servedDown.close();
  await servedFive.close();
  await upstream.close();
});

// instrumentation-http makes no SERVER span for an upgrade request, so no span is active when the
// relay handles the handshake: attemptContext 'auto' then runs the transport outside the attempt
// span, and the HTTP client instrumentation starts a new trace and overwrites the relay's traceparent.
test('a WebSocket handshake under instrumentation-http: the upstream handshake carries a traceparent of the relay attempt span\'s trace', async () => {
  const upstream = await startEchoWs();
  const obs = observe({ tracing: true });
  const served = untraced(await serveWithUpgrades({ targetBaseUrl: upstream.url, stages: [obs.request, obs.attempt] }));
  try {
    await echoSession(`${served.url}/chat`, ['hi']);
    assert.ok(await waitFor(() => exporter.getFinishedSpans().filter(ours).length === 1));
    const attempt = exporter.getFinishedSpans().find(ours)!;
    assert.is(attempt.attributes['http.response.status_code'], 101);
    const [, trace, parent] = String(upstream.handshakes[0]!.headers.traceparent).split('-');
    const sent = exporter.getFinishedSpans().find((span) => spanId(span) === parent);
    assert.is(trace, traceId(attempt), `the upstream got ${upstream.handshakes[0]!.headers.traceparent}, from a ${sent?.instrumentationScope.name} span with parent ${sent?.parentSpanContext?.spanId}; the relay's attempt span is ${traceId(attempt)}-${spanId(attempt)}`);
  } finally {
    await served.close();
    await upstream.close();
  }
});

// What the gateway builds for a route with `accessLog: true` and `tracing: true` (feature-observe.ts):
// the two observations side by side, each with its own record.
test('accessLog() and tracing() side by side under instrumentation-http: the access line carries the SERVER span\'s trace', async () => {
  const upstream = await scripted([200]);
  const written: string[] = [];
  const log = accessLog({ stream: { write: (line: string) => written.push(line) } });
  const t = tracing();
  const served = untraced(await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, t.request, t.attempt, log.attempt] })));
  try {
    assert.is((await fetchRaw(`${served.url}/x`, { headers: client })).status, 200);
    assert.ok(await waitFor(() => written.length === 1 && exporter.getFinishedSpans().some((span) => span.kind === SpanKind.SERVER && span.parentSpanContext === undefined)));
    const server = exporter.getFinishedSpans().find((span) => span.kind === SpanKind.SERVER && span.parentSpanContext === undefined)!;
    const line = JSON.parse(written[0]!) as { traceId: string | null; spanId: string | null };
    assert.equal({ traceId: line.traceId, spanId: line.spanId }, { traceId: traceId(server), spanId: spanId(server) });
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.after(async () => {
  await provider.shutdown();
});

test.run();
