import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { Registry } from 'prom-client';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { close, fetchRaw, listen, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { combinedLogRelay, observedGateway, setUpTracing } from './observability.js';

const exporter = new InMemorySpanExporter();
const provider = setUpTracing(exporter);

test('the observed gateway: access lines, a scrape with the documented series, spans per attempt, the request id', async () => {
  let calls = 0;
  const upstream = await startUpstream((req, res) => {
    // The first call to /users/7 fails with 503: retried once.
    const status = req.url!.startsWith('/users/7') && calls++ === 0 ? 503 : 200;
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': 2 }).end('ok');
  });
  const logger = memoryLogger();
  const registry = new Registry();
  const { api, server } = await observedGateway(upstream.url, logger, registry, 0);
  if (!server.listening) await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const response = await fetchRaw(`${base}/api/users/7?token=abc`);
  assert.is(response.status, 200);
  const id = String(response.headers['x-request-id']);
  assert.is(upstream.requests[1]!.headers['x-request-id'], id);
  assert.ok(await waitFor(() => logger.lines.some((line) => line.message === 'request')));
  const fields = logger.lines.find((line) => line.message === 'request')!.fields;
  assert.equal([fields.path, fields.status, fields.attempts, fields.requestId], ['/api/users/7?token=[REDACTED]', 200, 2, id]);

  const scrape = await fetchRaw(`${base}/metrics`);
  assert.match(scrape.text, `relay_requests_total{relay="api",route="/api/users/:id",method="GET",status_class="2xx",target="${upstream.url}"} 1`);
  assert.match(scrape.text, `relay_upstream_retries_total{relay="api",target="${upstream.url}"} 1`);
  for (const name of ['relay_request_duration_seconds_bucket', 'relay_upstream_attempt_duration_seconds_bucket', 'relay_requests_in_flight', 'relay_upstream_attempts_total']) {
    assert.ok(scrape.text.includes(name), name);
  }

  await provider.forceFlush();
  const server_ = exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.SERVER);
  const clients = exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.CLIENT);
  assert.is(server_.length, 1);
  assert.is(clients.length, 2);
  assert.ok(clients.every((span) => span.parentSpanContext?.spanId === server_[0]!.spanContext().spanId));
  assert.equal(upstream.requests.map((seen) => seen.headers.traceparent), clients.map((span) => `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`));
  await close(server);
  await api.shutdown();
  await upstream.close();
});

test('the gateway relays WebSocket sessions, and each one is an access line when it closes', async () => {
  const wsServer = (await import('node:http')).createServer();
  const wss = new WebSocketServer({ server: wsServer });
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(String(data))));
  const wsUrl = await listen(wsServer);
  const logger = memoryLogger();
  const { api, server } = await observedGateway(wsUrl, logger, new Registry(), 0);
  if (!server.listening) await once(server, 'listening');
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/chat`);
  await once(client, 'open');
  client.send('hello');
  assert.is(String((await once(client, 'message'))[0]), 'hello');
  client.close();
  await once(client, 'close');
  assert.ok(await waitFor(() => logger.lines.some((line) => line.message === 'request')));
  const fields = logger.lines.find((line) => line.message === 'request')!.fields;
  assert.equal([fields.websocket, fields.status, fields.path], [true, 101, '/api/chat']);
  await close(server);
  await api.shutdown();
  wss.close();
  await close(wsServer);
});

test('accessLog() alone in Combined Log Format, the query dropped', async () => {
  const upstream = await startUpstream();
  const lines: string[] = [];
  const served = await serveRelay(combinedLogRelay(upstream.url, { write: (line: string) => lines.push(line) }));
  await fetchRaw(`${served.url}/page?secret=1`, { headers: { 'user-agent': 'curl/8' } });
  assert.ok(await waitFor(() => lines.length === 1));
  assert.match(lines[0]!, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/page HTTP\/1\.1" 200 \d+ "-" "curl\/8"\n$/);
  await served.close();
  await upstream.close();
});

test.after(() => provider.shutdown());

test.run();
