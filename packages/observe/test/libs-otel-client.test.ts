// @relay/observe's tracing with @opentelemetry/instrumentation-http for outgoing requests
// only (`disableIncomingRequestInstrumentation`: no HTTP server instrumentation, so the docs'
// `serverSpan: true` setup), under NodeTracerProvider (AsyncLocalStorage, W3C propagation).
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
const relayPorts = new Set<number>();
registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [
    new HttpInstrumentation({
      disableIncomingRequestInstrumentation: true,
      // The test's own client is not traced.
      ignoreOutgoingRequestHook: (options) => relayPorts.has(Number(options.port)),
    }),
  ],
});
createRequire(import.meta.url)('node:http');
syncBuiltinESMExports();

const { createRelay } = await import('@relay/core');
const { fetchRaw, serveRelay, waitFor } = await import('@relay/testkit');
const { observe } = await import('../src/index.js');
const { scripted } = await import('./helpers.js');
type TracingOptions = import('../src/index.js').TracingOptions;

const ours = (span: ReadableSpan) => span.instrumentationScope.name === '@relay/observe';
const remote = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

test.before.each(() => exporter.reset());

/** One GET through a relay with `tracing`; the relay's spans and the traceparent the upstream got. */
async function traced(tracingOptions: TracingOptions, headers: Record<string, string> = {}) {
  const upstream = await scripted([200]);
  const obs = observe({ tracing: tracingOptions });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [obs.request, obs.attempt] }));
  relayPorts.add(Number(new URL(served.url).port));
  try {
    assert.is((await fetchRaw(`${served.url}/x`, { headers })).status, 200);
    const count = tracingOptions.serverSpan === true ? 2 : 1;
    assert.ok(await waitFor(() => exporter.getFinishedSpans().filter(ours).length === count));
    const spans = exporter.getFinishedSpans();
    const sent = String(upstream.requests[0]!.headers.traceparent);
    const sender = spans.find((span) => span.spanContext().spanId === sent.split('-')[2]);
    return {
      server: spans.find((span) => ours(span) && span.kind === SpanKind.SERVER),
      attempt: spans.find((span) => ours(span) && span.kind === SpanKind.CLIENT)!,
      traceparent: sent,
      sentBy: `${sender?.instrumentationScope.name} span, parent ${sender?.parentSpanContext?.spanId}`,
    };
  } finally {
    await served.close();
    await upstream.close();
  }
}

test('serverSpan: true (no server instrumentation) and the HTTP client instrumentation: the upstream continues the relay\'s trace', async () => {
  const { server, attempt, traceparent, sentBy } = await traced({ serverSpan: true });
  assert.is(attempt.parentSpanContext?.spanId, server!.spanContext().spanId);
  assert.is(traceparent.split('-')[1], attempt.spanContext().traceId, `upstream got ${traceparent} (${sentBy}); relay attempt ${attempt.spanContext().traceId}-${attempt.spanContext().spanId}`);
});

test('no server span, a client traceparent and the HTTP client instrumentation: the upstream continues the client\'s trace', async () => {
  const { attempt, traceparent, sentBy } = await traced({}, { traceparent: remote });
  assert.is(attempt.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.is(traceparent.split('-')[1], '0af7651916cd43dd8448eb211c80319c', `upstream got ${traceparent} (${sentBy})`);
});

test('attemptContext: always (the workaround): the transport span is the attempt\'s child, the upstream continues the relay\'s trace', async () => {
  const { attempt, traceparent } = await traced({ serverSpan: true, attemptContext: 'always' });
  assert.is(traceparent.split('-')[1], attempt.spanContext().traceId);
  const sender = exporter.getFinishedSpans().find((span) => span.spanContext().spanId === traceparent.split('-')[2])!;
  assert.is(sender.parentSpanContext?.spanId, attempt.spanContext().spanId);
});

test.after(async () => {
  await provider.shutdown();
});

test.run();
