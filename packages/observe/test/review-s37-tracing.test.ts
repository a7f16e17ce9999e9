// Review s37 (issue 18, @relay/observe tracing): spans from @opentelemetry/sdk-trace-base with an
// in-memory exporter, the AsyncLocalStorage context manager and the W3C propagator, checked
// against the HTTP semantic conventions (attribute names and values, span kind, status).
import { request as httpRequest } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SpanKind, SpanStatusCode, context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { tracing } from '../src/index.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

function spansOf(kind: SpanKind): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.kind === kind);
}

test.before.each(() => exporter.reset());

test('regression: a non-standard method is _OTHER with http.request.method_original on both spans, named "HTTP"; the upstream gets the attempt\'s traceparent', async () => {
  // HTTP semantic conventions: http.request.method "_OTHER" for a method outside the well-known set, the original in
  // http.request.method_original; span name "{method}" or "HTTP" when the method is _OTHER.
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(207, { 'content-length': 2 }).end('ok');
  });
  const t = tracing({ tracerProvider, serverSpan: true });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] }));
  try {
    assert.is((await fetchRaw(`${served.url}/dav/file?depth=1`, { method: 'PROPFIND' })).status, 207);
    assert.ok(await waitFor(() => spansOf(SpanKind.SERVER).length === 1 && spansOf(SpanKind.CLIENT).length === 1));
    const server = spansOf(SpanKind.SERVER)[0]!;
    const client = spansOf(SpanKind.CLIENT)[0]!;
    for (const span of [server, client]) {
      assert.is(span.name, 'HTTP');
      assert.is(span.attributes['http.request.method'], '_OTHER');
      assert.is(span.attributes['http.request.method_original'], 'PROPFIND');
      assert.is(span.attributes['http.response.status_code'], 207);
      assert.is(span.status.code, SpanStatusCode.UNSET);
    }
    assert.is(server.attributes['url.path'], '/dav/file');
    assert.is(client.attributes['url.full'], `${upstream.url}/dav/file`);
    assert.is(client.parentSpanContext?.spanId, server.spanContext().spanId);
    const { traceId, spanId } = client.spanContext();
    assert.is(upstream.requests[0]!.headers.traceparent, `00-${traceId}-${spanId}-01`);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('a client that leaves before any response: the SERVER span has error.type and ERROR, but no http.response.status_code (none was sent)', async () => {
  // HTTP semantic conventions, HTTP server span: http.response.status_code is "Conditionally Required: If and only if
  // one was sent"; error.type describes the failure when there is no status. 499 is nginx's log-only code for "the
  // client closed the connection": it never goes on the wire, so it is not a response status code of the span.
  const upstream = await startUpstream(() => {
    // Never answers: the client leaves first.
  });
  const t = tracing({ tracerProvider, serverSpan: true });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] }));
  try {
    const req = httpRequest(`${served.url}/slow`, { agent: false });
    req.on('error', () => {});
    req.end();
    assert.ok(await waitFor(() => upstream.requests.length === 1));
    req.destroy();
    assert.ok(await waitFor(() => spansOf(SpanKind.SERVER).length === 1, 5000), 'the SERVER span ended');
    const server = spansOf(SpanKind.SERVER)[0]!;
    assert.is(server.status.code, SpanStatusCode.ERROR);
    assert.ok(server.attributes['error.type'] !== undefined, 'error.type says why');
    assert.is(server.attributes['http.response.status_code'], undefined, `status_code ${String(server.attributes['http.response.status_code'])} was never sent`);
  } finally {
    upstream.server.closeAllConnections();
    await served.close();
    await upstream.close();
  }
});

test.run();
