// Review s37 (issue 18, @relay/observe tracing) under a real OpenTelemetry Node setup:
// NodeTracerProvider (AsyncLocalStorage context manager, W3C propagation) with
// @opentelemetry/instrumentation-http making the SERVER span of each client request, as in an app
// that enables the usual auto-instrumentation and also turns on tracing({ serverSpan: true }) (the
// gateway's `tracing: { serverSpan: true }` with the SDK preloaded is the same).
//
// ESM: the instrumentation must patch node:http before the modules that use it load, so they are
// imported after registerInstrumentations() (as libs-otel.test.ts does).
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SpanKind } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
/** The relay's port: the test client's own requests to it are not traced (a browser's would not be). */
const relayPorts = new Set<number>();
registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [new HttpInstrumentation({ ignoreOutgoingRequestHook: (options) => relayPorts.has(Number(options.port)) })],
});
createRequire(import.meta.url)('node:http');
syncBuiltinESMExports();

const { createRelay } = await import('@relay/core');
const { fetchRaw, serveRelay, startUpstream, waitFor } = await import('@relay/testkit');
const { tracing } = await import('../src/index.js');

const ours = (span: ReadableSpan) => span.instrumentationScope.name === '@relay/observe';
const spanId = (span: ReadableSpan) => span.spanContext().spanId;

test('serverSpan: true under an HTTP server instrumentation: the attempt is a child of the instrumentation\'s SERVER span, which is not left without children', async () => {
  // Issue 18: "a CLIENT span per upstream attempt as the child of the active context (the user's HTTP server
  // instrumentation makes the SERVER span; without one, the relay can make it)". README: serverSpan is for apps
  // without server instrumentation. With a client traceparent, Relay extracts it over the active context, so its own
  // SERVER span (and the attempt under it) becomes a sibling of the instrumentation's SERVER span: the SERVER span
  // every dashboard and the SDK's own HTTP metrics are built on holds none of the request's work.
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': 2 }).end('ok');
  });
  const t = tracing({ serverSpan: true });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] }));
  relayPorts.add(served.port);
  try {
    const clientTrace = '0af7651916cd43dd8448eb211c80319c';
    const clientSpan = 'b7ad6b7169203331';
    assert.is((await fetchRaw(`${served.url}/items`, { headers: { traceparent: `00-${clientTrace}-${clientSpan}-01` } })).status, 200);
    // The relay's SERVER span (instrumentation-http's), the attempt, the transport's CLIENT span, the upstream's SERVER span.
    assert.ok(await waitFor(() => exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.SERVER && !ours(span)).length === 2, 5000));
    const spans = exporter.getFinishedSpans();
    const instrumentationServer = spans.find((span) => span.kind === SpanKind.SERVER && !ours(span) && span.parentSpanContext?.spanId === clientSpan);
    assert.ok(instrumentationServer, 'instrumentation-http made the SERVER span, child of the client\'s traceparent');
    const attempt = spans.find((span) => ours(span) && span.kind === SpanKind.CLIENT);
    assert.ok(attempt, 'one CLIENT span for the attempt');
    // Walk up from the attempt: the instrumentation's SERVER span must be on the way to the client's span.
    const byId = new Map(spans.map((span) => [spanId(span), span]));
    const ancestors: string[] = [];
    for (let parent = attempt!.parentSpanContext?.spanId; parent !== undefined && parent !== clientSpan; parent = byId.get(parent)?.parentSpanContext?.spanId) ancestors.push(parent);
    assert.ok(ancestors.includes(spanId(instrumentationServer!)), `the attempt's ancestors ${JSON.stringify(ancestors)} leave out the SERVER span ${spanId(instrumentationServer!)}`);
    assert.ok(spans.some((span) => span.parentSpanContext?.spanId === spanId(instrumentationServer!)), 'the SERVER span has a child');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
