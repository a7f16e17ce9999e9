// Review s40 (acceptance, issue 18): metric route labels and the SERVER span's url.path come from the
// client's request target as sent, where core (and @relay/routing, @relay/limits, the gateway) decide on
// the path in one form. An absolute-form target (RFC 9112 §3.2.2: a server MUST accept it; the relay
// does and relays it to the right path) and a percent-encoded unreserved letter (RFC 3986 §6.2.2.2:
// the same resource; core's path-normalize.ts: "whatever decides by path … must see one form") fall to
// route="other", and url.path holds a whole URL. Real client bytes, a real upstream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRelay } from '@relay/core';
import { sendRaw, serveRelay, waitFor } from '@relay/testkit';
import { observe } from '@relay/observe';
import { scripted } from './helpers.js';

const routes = ['/api/users/:id'];

function requestsLines(text: string): string {
  return text.split('\n').filter((line) => line.startsWith('relay_requests_total')).join('\n');
}

test('an absolute-form request target (GET http://host/api/users/7): route label is the template, not "other"', async () => {
  const upstream = await scripted([200]);
  const registry = new Registry();
  const obs = observe({ metrics: { registry, relay: 'abs', routes } });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', stages: [obs.request, obs.attempt] }));
  const raw = await sendRaw(served.port, `GET http://127.0.0.1:${served.port}/api/users/7?t=1 HTTP/1.1\r\nHost: 127.0.0.1:${served.port}\r\nConnection: close\r\n\r\n`);
  const text = await registry.metrics();
  await served.close();
  await upstream.close();
  // The relay accepts the absolute form and relays the request to the route's path.
  assert.match(raw, /^HTTP\/1\.1 200 /);
  assert.equal(upstream.requests.map((seen) => seen.url), ['/users/7?t=1']);
  assert.match(requestsLines(text), /relay_requests_total\{[^}]*route="\/api\/users\/:id"[^}]*\} 1/);
});

test('an absolute-form request target: the SERVER span url.path is the path, not the whole URL', async () => {
  const upstream = await scripted([200]);
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const obs = observe({ tracing: { tracerProvider, serverSpan: true } });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', stages: [obs.request, obs.attempt] }));
  const raw = await sendRaw(served.port, `GET http://127.0.0.1:${served.port}/api/users/7?t=1 HTTP/1.1\r\nHost: 127.0.0.1:${served.port}\r\nConnection: close\r\n\r\n`);
  assert.ok(await waitFor(() => exporter.getFinishedSpans().some((span) => span.kind === SpanKind.SERVER)));
  await served.close();
  await upstream.close();
  assert.match(raw, /^HTTP\/1\.1 200 /);
  const server = exporter.getFinishedSpans().find((span) => span.kind === SpanKind.SERVER)!;
  // Semantic conventions: url.path is "the URI path component" (/api/users/7), url.scheme the scheme.
  assert.is(server.attributes['url.path'], '/api/users/7');
});

test('a percent-encoded unreserved letter (/api/%75sers/7 is /api/users/7): route label is the template', async () => {
  const upstream = await scripted([200]);
  const registry = new Registry();
  const obs = observe({ metrics: { registry, relay: 'enc', routes } });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', stages: [obs.request, obs.attempt] }));
  const raw = await sendRaw(served.port, 'GET /api/%75sers/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const text = await registry.metrics();
  await served.close();
  await upstream.close();
  assert.match(raw, /^HTTP\/1\.1 200 /);
  assert.match(requestsLines(text), /relay_requests_total\{[^}]*route="\/api\/users\/:id"[^}]*\} 1/);
});

test.run();
