import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createRelay, type Relay, type Stage } from '@relay/core';
import { retry } from '@relay/retry';
import { closedPort, fetchRaw, serveRelay, waitFor } from '@relay/testkit';
import { accessLog, observe, tracing, type AccessLogFields } from '../src/index.js';
import { echoSession, scripted, serveWithUpgrades, startEchoWs } from './helpers.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const userTracer = tracerProvider.getTracer('user-http-instrumentation');

function spansOf(kind: SpanKind): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((span) => span.kind === kind);
}

function traceparentOf(span: ReadableSpan): string {
  const { traceId, spanId } = span.spanContext();
  return `00-${traceId}-${spanId}-01`;
}

test.before.each(() => exporter.reset());

test('one CLIENT span per attempt, children of the active server span, traceparent sent upstream', async () => {
  const upstream = await scripted([503, 200]);
  const t = tracing({ tracerProvider });
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [t.request, retry({ maxRetries: 1, backoffFactor: 1 }), t.attempt] });
  // What an HTTP server instrumentation does: a SERVER span active while the listener runs.
  const served = await serveRelay(relay, function instrumented(req: IncomingMessage, res: ServerResponse) {
    const span = userTracer.startSpan('GET', { kind: SpanKind.SERVER });
    res.on('close', () => span.end());
    context.with(trace.setSpan(context.active(), span), () => relay.handle(req, res));
  });
  const response = await fetchRaw(`${served.url}/items?secret=1`);
  assert.is(response.status, 200);
  assert.ok(await waitFor(() => spansOf(SpanKind.SERVER).length === 1 && spansOf(SpanKind.CLIENT).length === 2));
  const server = spansOf(SpanKind.SERVER)[0]!;
  const [first, second] = spansOf(SpanKind.CLIENT).sort((a, b) => Number(a.attributes['http.request.resend_count'] ?? 0) - Number(b.attributes['http.request.resend_count'] ?? 0));
  const { hostname, port } = new URL(upstream.url);
  for (const span of [first!, second!]) {
    assert.is(span.name, 'GET');
    assert.is(span.parentSpanContext?.spanId, server.spanContext().spanId);
    assert.is(span.spanContext().traceId, server.spanContext().traceId);
    assert.is(span.attributes['http.request.method'], 'GET');
    assert.is(span.attributes['url.full'], `${upstream.url}/items`);
    assert.is(span.attributes['server.address'], hostname);
    assert.is(span.attributes['server.port'], Number(port));
  }
  assert.is(first!.attributes['http.response.status_code'], 503);
  assert.is(first!.attributes['error.type'], '503');
  assert.is(first!.status.code, SpanStatusCode.ERROR);
  assert.is(first!.attributes['http.request.resend_count'], undefined);
  assert.is(second!.attributes['http.response.status_code'], 200);
  assert.is(second!.attributes['http.request.resend_count'], 1);
  assert.is(second!.status.code, SpanStatusCode.UNSET);
  assert.is(second!.attributes['error.type'], undefined);
  // Each attempt carried its own span's traceparent.
  assert.equal(upstream.requests.map((seen) => seen.headers.traceparent), [traceparentOf(first!), traceparentOf(second!)]);
  await served.close();
  await upstream.close();
});

test('a response the retry discards: its attempt span ends at its head, not after the backoff', async () => {
  const upstream = await scripted([503, 200]);
  const t = tracing({ tracerProvider, serverSpan: true });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, retry({ maxRetries: 1, backoffFactor: 300 }), t.attempt] }));
  assert.is((await fetchRaw(`${served.url}/`)).status, 200);
  assert.ok(await waitFor(() => spansOf(SpanKind.CLIENT).length === 2 && spansOf(SpanKind.SERVER).length === 1));
  const ms = (time: [number, number]) => time[0] * 1000 + time[1] / 1e6;
  const [first, second] = spansOf(SpanKind.CLIENT).sort((a, b) => ms(a.startTime) - ms(b.startTime));
  assert.is(first!.attributes['http.response.status_code'], 503);
  // 300 ms of backoff between the two attempts, none of it in the first one's span.
  assert.ok(ms(second!.startTime) - ms(first!.endTime) >= 250, `${ms(second!.startTime) - ms(first!.endTime)} ms between them`);
  assert.ok(ms(first!.endTime) >= ms(first!.startTime));
  await served.close();
  await upstream.close();
});

test('serverSpan: a SERVER span continues the client traceparent; an unreachable upstream marks both spans', async () => {
  const port = await closedPort();
  const obs = observe({ tracing: { tracerProvider, serverSpan: true } });
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, stages: [obs.request, obs.attempt] }));
  const remote = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const response = await fetchRaw(`${served.url}/down`, { headers: { traceparent: remote } });
  assert.is(response.status, 502);
  assert.ok(await waitFor(() => spansOf(SpanKind.SERVER).length === 1 && spansOf(SpanKind.CLIENT).length === 1));
  const server = spansOf(SpanKind.SERVER)[0]!;
  const client = spansOf(SpanKind.CLIENT)[0]!;
  assert.is(server.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.is(server.parentSpanContext?.spanId, 'b7ad6b7169203331');
  assert.is(server.attributes['http.response.status_code'], 502);
  assert.is(server.attributes['url.path'], '/down');
  assert.is(server.attributes['error.type'], 'ERR_UPSTREAM_UNREACHABLE');
  assert.is(server.status.code, SpanStatusCode.ERROR);
  assert.is(client.parentSpanContext?.spanId, server.spanContext().spanId);
  assert.is(client.attributes['error.type'], 'ERR_UPSTREAM_UNREACHABLE');
  assert.is(client.attributes['http.response.status_code'], undefined);
  assert.is(client.status.code, SpanStatusCode.ERROR);
  await served.close();
});

test('without a server span, the attempts continue the client trace: its traceparent is their parent, its tracestate goes on', async () => {
  const upstream = await scripted([503, 200]);
  const t = tracing({ tracerProvider });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, retry({ maxRetries: 1, backoffFactor: 1 }), t.attempt] }));
  const remote = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const response = await fetchRaw(`${served.url}/orders`, { headers: { traceparent: remote, tracestate: 'vendor=abc' } });
  assert.is(response.status, 200);
  assert.ok(await waitFor(() => spansOf(SpanKind.CLIENT).length === 2));
  assert.is(spansOf(SpanKind.SERVER).length, 0);
  const attempts = spansOf(SpanKind.CLIENT);
  for (const span of attempts) {
    assert.is(span.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.is(span.parentSpanContext?.spanId, 'b7ad6b7169203331');
    assert.ok(span.parentSpanContext?.isRemote);
  }
  // Each attempt went up with its own span id in the client's trace, and the client's tracestate.
  const sent = upstream.requests.map((seen) => seen.headers.traceparent).sort();
  assert.equal(sent, attempts.map(traceparentOf).sort());
  assert.equal(upstream.requests.map((seen) => seen.headers.tracestate), ['vendor=abc', 'vendor=abc']);
  await served.close();
  await upstream.close();
});

test('the access line carries the trace: the SERVER span when there is one, else the last attempt', async () => {
  const upstream = await scripted([503, 200, 200, 200]);
  const remote = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const lineOf = async (tracingOptions: { serverSpan?: boolean }, listener?: (relay: Relay) => RequestListener) => {
    const written: string[] = [];
    const obs = observe({ accessLog: { stream: { write: (line: string) => written.push(line) } }, tracing: { tracerProvider, ...tracingOptions } });
    const relay = createRelay({ targetBaseUrl: upstream.url, stages: [obs.request, retry({ maxRetries: 1, backoffFactor: 1 }), obs.attempt] });
    const served = await serveRelay(relay, listener?.(relay));
    exporter.reset();
    assert.is((await fetchRaw(`${served.url}/`, { headers: { traceparent: remote } })).status, 200);
    assert.ok(await waitFor(() => written.length === 1));
    await served.close();
    return JSON.parse(written[0]!) as { traceId: string | null; spanId: string | null };
  };
  // No server span: the client's trace, and the last attempt's span (the one that answered).
  const plain = await lineOf({});
  const retried = spansOf(SpanKind.CLIENT).find((span) => span.attributes['http.request.resend_count'] === 1)!;
  assert.equal(plain, { ...plain, traceId: '0af7651916cd43dd8448eb211c80319c', spanId: retried.spanContext().spanId });
  // serverSpan: the relay's SERVER span.
  const own = await lineOf({ serverSpan: true });
  assert.is(own.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.is(own.spanId, spansOf(SpanKind.SERVER)[0]!.spanContext().spanId);
  // An HTTP server instrumentation's span, active while the relay runs.
  const instrumented = await lineOf({}, (relay) => (req, res) => {
    const span = userTracer.startSpan('GET', { kind: SpanKind.SERVER });
    res.on('close', () => span.end());
    context.with(trace.setSpan(context.active(), span), () => relay.handle(req, res));
  });
  assert.ok(await waitFor(() => spansOf(SpanKind.SERVER).length === 1));
  const server = spansOf(SpanKind.SERVER)[0]!;
  assert.equal(instrumented, { ...instrumented, traceId: server.spanContext().traceId, spanId: server.spanContext().spanId });
  await upstream.close();
});

test('the query stays out of url.full unless includeQuery; a 404 is an error on the CLIENT span only', async () => {
  const upstream = await scripted([404]);
  const t = tracing({ tracerProvider, serverSpan: true, includeQuery: true });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] }));
  await fetchRaw(`${served.url}/a?b=c`);
  assert.ok(await waitFor(() => spansOf(SpanKind.SERVER).length === 1));
  const client = spansOf(SpanKind.CLIENT)[0]!;
  const server = spansOf(SpanKind.SERVER)[0]!;
  assert.is(client.attributes['url.full'], `${upstream.url}/a?b=c`);
  assert.is(client.status.code, SpanStatusCode.ERROR);
  assert.is(server.attributes['url.query'], 'b=c');
  assert.is(server.status.code, SpanStatusCode.UNSET);
  await served.close();
  await upstream.close();
});

test('a WebSocket handshake is traced: CLIENT span with 101, traceparent on the upstream handshake', async () => {
  const upstream = await startEchoWs();
  const t = tracing({ tracerProvider, serverSpan: true });
  const served = await serveWithUpgrades({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] });
  await echoSession(`${served.url}/chat`, ['hi']);
  assert.ok(await waitFor(() => spansOf(SpanKind.CLIENT).length === 1 && spansOf(SpanKind.SERVER).length === 1));
  const client = spansOf(SpanKind.CLIENT)[0]!;
  assert.is(client.attributes['http.response.status_code'], 101);
  assert.is(client.status.code, SpanStatusCode.UNSET);
  assert.is(upstream.handshakes[0]!.headers.traceparent, traceparentOf(client));
  await served.close();
  await upstream.close();
});

test('without an SDK nothing is recorded and nothing breaks; a client traceparent passes as it came', async () => {
  const upstream = await scripted([200]);
  const t = tracing();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt] }));
  const remote = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const response = await fetchRaw(`${served.url}/`, { headers: { traceparent: remote } });
  assert.is(response.status, 200);
  assert.is(upstream.requests[0]!.headers.traceparent, remote);
  assert.is(exporter.getFinishedSpans().length, 0);
  await served.close();
  await upstream.close();
});

/** A stage placed inside the attempt stage: what the transport would see as the active span. */
function probe(seen: (string | undefined)[]): Stage {
  return {
    name: 'probe',
    wrap: (next) => (request) => {
      seen.push(trace.getSpan(context.active())?.spanContext().spanId);
      return next(request);
    },
  };
}

test('attemptContext: auto runs the transport in the attempt span only when a span was active; always and never', async () => {
  const upstream = await scripted([200]);
  const cases = [
    { mode: 'auto', userSpan: false, inside: false },
    { mode: 'auto', userSpan: true, inside: true },
    { mode: 'always', userSpan: false, inside: true },
    { mode: 'never', userSpan: true, inside: false },
  ] as const;
  for (const { mode, userSpan, inside } of cases) {
    exporter.reset();
    const seen: (string | undefined)[] = [];
    let userSpanId: string | undefined;
    const t = tracing({ tracerProvider, attemptContext: mode });
    const relay = createRelay({ targetBaseUrl: upstream.url, stages: [t.request, t.attempt, probe(seen)] });
    const served = await serveRelay(relay, function listener(req: IncomingMessage, res: ServerResponse) {
      if (!userSpan) return relay.handle(req, res);
      const span = userTracer.startSpan('GET', { kind: SpanKind.SERVER });
      userSpanId = span.spanContext().spanId;
      res.on('close', () => span.end());
      context.with(trace.setSpan(context.active(), span), () => relay.handle(req, res));
    });
    assert.is((await fetchRaw(`${served.url}/`)).status, 200);
    assert.ok(await waitFor(() => spansOf(SpanKind.CLIENT).length === 1));
    const client = spansOf(SpanKind.CLIENT)[0]!;
    // Inside: the attempt span; outside: whatever was active around the relay (the user's span, or none).
    assert.is(seen[0], inside ? client.spanContext().spanId : userSpanId, `${mode}, user span ${userSpan}`);
    // Whatever the mode: the span's parent is the active span, and the upstream got its traceparent.
    assert.is(client.parentSpanContext?.spanId, userSpanId);
    assert.is(upstream.requests.at(-1)!.headers.traceparent, traceparentOf(client));
    await served.close();
  }
  await upstream.close();
});

test('options are checked', () => {
  assert.throws(() => tracing({ attemptContext: 'sometimes' as never }), /attemptContext must be one of "auto", "always", "never"/);
  assert.throws(() => tracing({ serverspan: true } as never), /unknown option "serverspan" \(did you mean "serverSpan"\?/);
  assert.throws(() => tracing({ serverSpan: 'yes' as never }), /serverSpan must be a boolean/);
  assert.throws(() => tracing({ tracerProvider: {} as never }), /TracerProvider/);
  assert.throws(() => observe({ tracing: 'on' as never }), /tracing must be an options object or a boolean/);
});

test.after(async () => {
  await tracerProvider.shutdown();
});

test('accessLog() and tracing() as separate observations (a gateway route with both): the line still leads to the trace', async () => {
  const upstream = await scripted([200, 200]);
  const written: string[] = [];
  const log = accessLog({ stream: { write: (line: string) => written.push(line) } });
  for (const serverSpan of [true, false]) {
    exporter.reset();
    const t = tracing({ tracerProvider, serverSpan });
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, t.request, t.attempt, log.attempt] }));
    assert.is((await fetchRaw(`${served.url}/x`)).status, 200);
    assert.ok(await waitFor(() => written.length === (serverSpan ? 1 : 2) && spansOf(serverSpan ? SpanKind.SERVER : SpanKind.CLIENT).length === 1));
    const span = spansOf(serverSpan ? SpanKind.SERVER : SpanKind.CLIENT)[0]!;
    const line = JSON.parse(written.at(-1)!) as AccessLogFields;
    assert.equal([line.traceId, line.spanId], [span.spanContext().traceId, span.spanContext().spanId], `serverSpan: ${serverSpan}`);
    await served.close();
  }
  await upstream.close();
});

test.run();
