// docs/observability.md and packages/observe/README.md: access logs, metrics, traces and request
// ids on one relay. observability.test.ts runs it against real upstreams (HTTP and WebSocket),
// scrapes /metrics and reads the spans of an in-memory exporter.
import http from 'node:http';
import { Registry } from 'prom-client';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createRelay, type Logger } from '@relay/core';
import { metricsHandler, observe } from '@relay/observe';
import { retry } from '@relay/retry';
import { websocket } from '@relay/ws';

// Once per process, before the relays are built: what the OpenTelemetry SDK needs in Node.
export function setUpTracing(exporter: SpanExporter): BasicTracerProvider {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator()); // traceparent, tracestate
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  return provider;
}

export async function observedGateway(apiService: string, logger: Logger, registry = new Registry(), port = 8080) {
  const obs = observe({
    requestId: true,                                   // X-Request-Id kept or made, sent upstream and back
    accessLog: true,                                   // one line per request to the relay's logger
    metrics: { registry, relay: 'api', routes: ['/api/users/:id', '/api/static/*'] },
    tracing: { serverSpan: true },                     // no HTTP server instrumentation in this app
  });
  const api = createRelay({
    targetBaseUrl: apiService,
    mountPath: '/api',
    logger,
    websocket: websocket(),
    stages: [obs.request, retry({ maxRetries: 2 }), obs.attempt], // request: once; attempt: every try
  });
  await api.startup();
  const serveMetrics = metricsHandler(registry);
  const server = http.createServer((req, res) => (req.url === '/metrics' ? serveMetrics(req, res) : api.handle(req, res)));
  server.on('upgrade', api.upgrade);
  server.listen(port);
  return { api, server };
}

// Each part alone: accessLog(), metrics() and tracing() return the same pair of stages.
import { accessLog, type LineSink } from '@relay/observe';

export function combinedLogRelay(apiService: string, out: LineSink = process.stdout) {
  const log = accessLog({ stream: out, format: 'combined', query: 'drop' });
  return createRelay({ targetBaseUrl: apiService, stages: [log.request, log.attempt] });
}
