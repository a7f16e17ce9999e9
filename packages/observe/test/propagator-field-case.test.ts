// A propagator may name its fields in mixed case (AWS X-Ray's docs spell `X-Amzn-Trace-Id`), while
// Relay's header records are lowercase: the client's own field is still found when extracting and
// still removed before the relay injects its own, so exactly one value goes upstream, the relay's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Context, type TextMapGetter, type TextMapPropagator, type TextMapSetter, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { tracing } from '../src/index.js';

const field = 'X-Trace-Id';

/** `X-Trace-Id: <trace id>-<span id>`: a minimal vendor propagator with a mixed-case field name. */
const vendorPropagator: TextMapPropagator = {
  inject(context: Context, carrier: unknown, setter: TextMapSetter) {
    const span = trace.getSpanContext(context);
    if (span !== undefined) setter.set(carrier, field, `${span.traceId}-${span.spanId}`);
  },
  extract(context: Context, carrier: unknown, getter: TextMapGetter) {
    const value = getter.get(carrier, field);
    const match = typeof value === 'string' ? /^([0-9a-f]{32})-([0-9a-f]{16})$/.exec(value) : null;
    if (match === null) return context;
    return trace.setSpanContext(context, { traceId: match[1]!, spanId: match[2]!, traceFlags: 1, isRemote: true });
  },
  fields: () => [field],
};

test('a mixed-case propagator field: the client\'s trace is continued and only the relay\'s value reaches the upstream', async () => {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const upstream = await startUpstream();
  const t = tracing({ tracerProvider, propagator: vendorPropagator });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] }));
  try {
    const traceId = 'a'.repeat(32);
    const response = await fetchRaw(`${served.url}/x`, { headers: { 'x-trace-id': `${traceId}-${'b'.repeat(16)}` } });
    assert.is(response.status, 200);
    const lines = upstream.requests.at(-1)!.rawHeaders.filter((_, index, raw) => index % 2 === 0 && raw[index]!.toLowerCase() === 'x-trace-id');
    assert.is(lines.length, 1, 'one X-Trace-Id line upstream, not the client\'s beside the relay\'s');
    const sent = upstream.requests.at(-1)!.headers['x-trace-id'] as string;
    const [span] = exporter.getFinishedSpans();
    assert.is(span?.spanContext().traceId, traceId, 'the client\'s trace is continued');
    assert.is(sent, `${traceId}-${span!.spanContext().spanId}`, 'the upstream got the attempt span');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
