// @relay/observe with an HTTP/2 front (http2.createServer(relay.handle)) and http2Transport to an
// h2c upstream: the line, the series, the span and the events, and a client that resets its stream
// (before the head, mid-upload, mid-response) is a prompt 499 / ERR_CLIENT_ABORTED, not a 504 or no line.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import http2 from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { SpanKind, propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRelay, http2Transport, relayChannels, type Relay, type RequestEndMessage, type AttemptResponseMessage, type AttemptErrorMessage } from '@relay/core';
import { listenHttp2, waitFor } from '@relay/testkit';
import { observe } from '../src/index.js';

propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

type H2Handler = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;

interface H2Upstream {
  url: string;
  seen: { path: string; body: Buffer; traceparent?: string }[];
  close(): Promise<void>;
}

async function h2Upstream(handler: H2Handler): Promise<H2Upstream> {
  const seen: H2Upstream['seen'] = [];
  const server = http2.createServer((req, res) => {
    const chunks: Buffer[] = [];
    const entry = { path: req.url, body: Buffer.alloc(0), traceparent: req.headers.traceparent as string | undefined };
    seen.push(entry);
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => (entry.body = Buffer.concat(chunks)));
    handler(req, res);
  });
  const listening = await listenHttp2(server);
  return { url: listening.url, seen, close: listening.close };
}

interface Front {
  url: string;
  relay: Relay;
  lines: Record<string, unknown>[];
  registry: Registry;
  close(): Promise<void>;
}

async function h2Front(upstreamUrl: string, format: 'json' | 'combined' = 'json', raw: string[] = []): Promise<Front> {
  const lines: Record<string, unknown>[] = [];
  const registry = new Registry();
  const obs = observe({
    accessLog: { stream: { write: (line: string) => (format === 'json' ? lines.push(JSON.parse(line)) : raw.push(line.trimEnd())) }, format },
    metrics: { registry, relay: 'h2' },
    tracing: { tracerProvider },
  });
  const relay = createRelay({ targetBaseUrl: upstreamUrl, transport: http2Transport(), stages: [obs.request, obs.attempt], timeout: { read: 4000 } });
  await relay.startup();
  const server = http2.createServer(relay.handle);
  const listening = await listenHttp2(server);
  return {
    url: listening.url,
    relay,
    lines,
    registry,
    close: async () => {
      await relay.shutdown({ timeout: 500 });
      await listening.close();
    },
  };
}

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** One HTTP/2 request; resolves with status and body. */
function h2Request(session: http2.ClientHttp2Session, path: string, method = 'GET', body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, 'user-agent': 'h2-review' }, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

test('h2 front + h2c upstream: one JSON line with status, bytes, ttfb, path, client; metrics and one CLIENT span', async () => {
  exporter.reset();
  const upstream = await h2Upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello over h2');
  });
  const front = await h2Front(upstream.url);
  const session = http2.connect(front.url);
  const answer = await h2Request(session, '/items/1?token=abc');
  assert.is(answer.status, 200);
  assert.is(answer.body.toString(), 'hello over h2');
  assert.ok(await waitFor(() => front.lines.length === 1));
  const line = front.lines[0]!;
  assert.is(line.method, 'GET');
  assert.is(line.path, '/items/1?token=[REDACTED]');
  assert.is(line.status, 200);
  assert.is(line.bytesIn, 0);
  assert.is(line.bytesOut, 13);
  assert.is(line.attempts, 1);
  assert.is(line.code, null);
  assert.is(line.client, '127.0.0.1');
  assert.type(line.ttfb, 'number');
  assert.ok((line.duration as number) >= (line.ttfb as number));
  assert.equal(line.headers, { 'user-agent': 'h2-review' });
  const text = await front.registry.metrics();
  assert.is(value(text, 'relay_requests_total{relay="h2",route="",method="GET",status_class="2xx",target="' + upstream.url + '"}'), 1);
  assert.is(value(text, 'relay_upstream_attempts_total{relay="h2",target="' + upstream.url + '",outcome="2xx"}'), 1);
  assert.is(value(text, 'relay_response_body_bytes_total{relay="h2"}'), 13);
  assert.is(value(text, 'relay_requests_in_flight{relay="h2"}'), 0);
  assert.ok(await waitFor(() => exporter.getFinishedSpans().length === 1));
  const span = exporter.getFinishedSpans()[0]!;
  assert.is(span.kind, SpanKind.CLIENT);
  assert.is(span.attributes['http.response.status_code'], 200);
  assert.is(span.attributes['url.full'], `${upstream.url}/items/1`);
  assert.is(upstream.seen[0]!.traceparent, `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
  session.close();
  await front.close();
  await upstream.close();
});

test('h2 POST with a body: bytesIn is the body, the upstream got it, request_body_bytes counted', async () => {
  const upstream = await h2Upstream((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(201, { 'content-type': 'text/plain' }).end('created'));
  });
  const front = await h2Front(upstream.url);
  const session = http2.connect(front.url);
  const body = Buffer.alloc(50_000, 'x');
  const answer = await h2Request(session, '/upload', 'POST', body);
  assert.is(answer.status, 201);
  assert.ok(await waitFor(() => front.lines.length === 1));
  assert.is(upstream.seen[0]!.body.length, 50_000);
  assert.is(front.lines[0]!.bytesIn, 50_000);
  assert.is(front.lines[0]!.bytesOut, 7);
  assert.is(front.lines[0]!.status, 201);
  const text = await front.registry.metrics();
  assert.is(value(text, 'relay_request_body_bytes_total{relay="h2"}'), 50_000);
  session.close();
  await front.close();
  await upstream.close();
});

test('h2 Combined Log Format says HTTP/2.0 on the request line', async () => {
  const upstream = await h2Upstream((_req, res) => res.writeHead(200).end('ok'));
  const raw: string[] = [];
  const front = await h2Front(upstream.url, 'combined', raw);
  const session = http2.connect(front.url);
  await h2Request(session, '/page');
  assert.ok(await waitFor(() => raw.length === 1));
  assert.match(raw[0]!, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/page HTTP\/2\.0" 200 2 "-" "h2-review"$/);
  session.close();
  await front.close();
  await upstream.close();
});

test('h2 events in order for a POST answered 200: start, attempt start, response, attempt end, request end 200 completed', async () => {
  const upstream = await h2Upstream((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200).end('done'));
  });
  const front = await h2Front(upstream.url);
  const events: string[] = [];
  const handler = (name: string) => (message: unknown) => {
    const m = message as Partial<RequestEndMessage & AttemptResponseMessage>;
    events.push(`${name}${m.response !== undefined ? ` ${m.response.status}` : ''}${m.status !== undefined ? ` ${m.status} ${m.completed}` : ''}`);
  };
  const subs = Object.entries(relayChannels).map(([key, name]) => [name, handler(key)] as const);
  for (const [name, fn] of subs) subscribe(name, fn);
  const session = http2.connect(front.url);
  try {
    await h2Request(session, '/p', 'POST', Buffer.from('payload'));
    assert.ok(await waitFor(() => events.some((e) => e.startsWith('requestEnd'))));
    assert.equal(events.filter((e) => !e.startsWith('relay')), ['requestStart', 'attemptStart', 'attemptResponse 200', 'attemptEnd 200', 'requestEnd 200 true']);
  } finally {
    for (const [name, fn] of subs) unsubscribe(name, fn);
    session.destroy();
    await front.close();
    await upstream.close();
  }
});

test('h2 client resets its stream mid-upload: the line is 499 ERR_CLIENT_ABORTED promptly, with the bytes read so far', async () => {
  const upstream = await h2Upstream((req) => {
    req.resume(); // reads the body, never answers
  });
  const front = await h2Front(upstream.url);
  const session = http2.connect(front.url);
  try {
    const stream = session.request({ ':method': 'POST', ':path': '/upload' }, { endStream: false });
    stream.on('error', () => {});
    stream.write(Buffer.alloc(10_000, 'u'));
    assert.ok(await waitFor(() => upstream.seen.length === 1));
    await new Promise((resolve) => setTimeout(resolve, 100));
    stream.close(http2.constants.NGHTTP2_CANCEL);
    assert.ok(await waitFor(() => front.lines.length === 1, 8000));
    const line = front.lines[0]!;
    assert.equal(
      { status: line.status, code: line.code, bytesIn: line.bytesIn, prompt: (line.duration as number) < 2000 },
      { status: 499, code: 'ERR_CLIENT_ABORTED', bytesIn: 10_000, prompt: true },
    );
  } finally {
    session.destroy();
    await front.close();
    await upstream.close();
  }
});

test('h2 client resets its stream (RST_STREAM CANCEL) before the head: the line is 499 ERR_CLIENT_ABORTED at once, not the read timeout\'s 504', async () => {
  exporter.reset();
  const upstream = await h2Upstream(() => {
    // never answers: the relay's read timeout (4 s here) would end it
  });
  const front = await h2Front(upstream.url);
  const events: string[] = [];
  const handler = (name: string) => (message: unknown) => {
    const m = message as Partial<RequestEndMessage & AttemptResponseMessage & AttemptErrorMessage>;
    events.push(`${name}${m.status !== undefined ? ` ${m.status}` : ''}${m.error !== undefined ? ` ${m.error.code}` : ''}`);
  };
  const subs = Object.entries(relayChannels).map(([key, name]) => [name, handler(key)] as const);
  for (const [name, fn] of subs) subscribe(name, fn);
  const session = http2.connect(front.url);
  try {
    const stream = session.request({ ':method': 'GET', ':path': '/slow' });
    stream.on('error', () => {});
    assert.ok(await waitFor(() => upstream.seen.length === 1));
    stream.close(http2.constants.NGHTTP2_CANCEL);
    // Wait past the read timeout, so that what the line says is visible either way.
    assert.ok(await waitFor(() => front.lines.length === 1 && events.some((e) => e.startsWith('requestEnd')), 8000));
    const line = front.lines[0]!;
    const text = await front.registry.metrics();
    const spanError = (await waitFor(() => exporter.getFinishedSpans().length === 1)) ? exporter.getFinishedSpans()[0]!.attributes['error.type'] : 'no span';
    const seen = { status: line.status, code: line.code, duration: (line.duration as number) < 2000 ? 'prompt' : `${line.duration} ms`, spanError, events: events.filter((e) => !e.startsWith('relay')),
      fourxx: value(text, `relay_requests_total{relay="h2",route="",method="GET",status_class="4xx",target="${upstream.url}"}`) };
    assert.equal(seen, {
      status: 499,
      code: 'ERR_CLIENT_ABORTED',
      duration: 'prompt',
      spanError: 'ERR_CLIENT_ABORTED',
      events: ['requestStart', 'attemptStart', 'attemptError ERR_CLIENT_ABORTED', 'requestEnd 499'],
      fourxx: 1,
    });
  } finally {
    for (const [name, fn] of subs) unsubscribe(name, fn);
    session.destroy();
    await front.close();
    await upstream.close();
  }
});

test('h2 client resets its stream mid-response: a line with the upstream status and ERR_CLIENT_ABORTED, in-flight back to 0', async () => {
  const chunk = Buffer.alloc(16_384, 'a');
  const timers: NodeJS.Timeout[] = [];
  const upstream = await h2Upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let sent = 0;
    const timer = setInterval(() => {
      if (res.stream.destroyed || sent === 50) {
        clearInterval(timer);
        if (!res.stream.destroyed) res.end();
        return;
      }
      res.write(chunk);
      sent++;
    }, 20);
    timers.push(timer);
  });
  const front = await h2Front(upstream.url);
  const ends: RequestEndMessage[] = [];
  const onEnd = (message: unknown) => ends.push(message as RequestEndMessage);
  subscribe(relayChannels.requestEnd, onEnd);
  const session = http2.connect(front.url);
  try {
    const stream = session.request({ ':method': 'GET', ':path': '/download' });
    stream.on('error', () => {});
    let received = 0;
    await new Promise<void>((resolve) =>
      stream.on('data', (data: Buffer) => {
        received += data.length;
        if (received >= 3 * 16_384) resolve();
      }),
    );
    stream.close(http2.constants.NGHTTP2_CANCEL);
    // The upstream would have sent everything within about 1 s; wait 4.
    const logged = await waitFor(() => front.lines.length === 1, 4000);
    const text = await front.registry.metrics();
    assert.equal(
      { logged, inFlight: value(text, 'relay_requests_in_flight{relay="h2"}'), completed: ends[0]?.completed },
      { logged: true, inFlight: 0, completed: false },
    );
    const line = front.lines[0]!;
    assert.is(line.status, 200);
    assert.is(line.code, 'ERR_CLIENT_ABORTED');
    assert.ok((line.bytesOut as number) < 50 * 16_384, `bytesOut ${line.bytesOut}`);
  } finally {
    unsubscribe(relayChannels.requestEnd, onEnd);
    for (const timer of timers) clearInterval(timer);
    session.destroy();
    await front.close();
    await upstream.close();
  }
});

test('h2 upstream resets its stream mid-response: the line says 200 ERR_UPSTREAM_RESET with the bytes sent', async () => {
  const upstream = await h2Upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('partial');
    setTimeout(() => res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 50);
  });
  const front = await h2Front(upstream.url);
  const session = http2.connect(front.url);
  try {
    const stream = session.request({ ':method': 'GET', ':path': '/broken' });
    stream.on('error', () => {});
    stream.resume();
    assert.ok(await waitFor(() => front.lines.length === 1, 5000));
    const line = front.lines[0]!;
    assert.is(line.status, 200);
    assert.is(line.code, 'ERR_UPSTREAM_RESET');
    assert.is(line.bytesOut, 7);
  } finally {
    session.destroy();
    await front.close();
    await upstream.close();
  }
});

test.run();
