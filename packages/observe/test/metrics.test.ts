import { request as httpRequest } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Histogram, Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { websocket } from '@relay/ws';
import { BufferedHistogram } from '../src/buffered.js';
import { metrics, metricsHandler, observe } from '../src/index.js';
import { echoSession, handshakeAndLeave, scripted, serveWithUpgrades, startEchoWs, startLateWs } from './helpers.js';

/** The value of one series in a scrape, `undefined` when it is absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('after 2xx, 5xx, a retry and a WebSocket session the scrape has the expected series and counts', async () => {
  // /ok → 200; /bad → 500 (not retried); /flaky → 503 then 200 (one retry).
  let flaky = 0;
  const upstream = await startUpstream((req, res) => {
    const status = req.url === '/bad' ? 500 : req.url === '/flaky' && flaky++ === 0 ? 503 : 200;
    res.writeHead(status, { 'content-length': 2 }).end('ok');
  });
  const registry = new Registry();
  const obs = observe({ metrics: { registry, relay: 'api', routes: ['/ok', '/flaky', '/chat'] } });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [obs.request, retry({ maxRetries: 1, backoffFactor: 1 }), obs.attempt] }),
  );
  assert.is((await fetchRaw(`${served.url}/ok`)).status, 200);
  assert.is((await fetchRaw(`${served.url}/ok`, { method: 'POST', body: 'abc' })).status, 200);
  assert.is((await fetchRaw(`${served.url}/bad`)).status, 500);
  assert.is((await fetchRaw(`${served.url}/flaky`)).status, 200);
  const wsUpstream = await startEchoWs();
  const wsServed = await serveWithUpgrades({ targetBaseUrl: wsUpstream.url, stages: [obs.request, obs.attempt] });
  const wsHost = new URL(wsUpstream.url).host;
  await echoSession(`${wsServed.url}/chat`, ['ping']);
  const target = upstream.url;
  // The session's record ends when the relay's side of the client connection closes.
  let text = await registry.metrics();
  for (let tries = 0; tries < 100 && value(text, 'relay_websocket_sessions_total{relay="api"}') !== 1; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    text = await registry.metrics();
  }
  const series = (name: string) => value(text, name);
  assert.is(series(`relay_requests_total{relay="api",route="/ok",method="GET",status_class="2xx",target="${target}"}`), 1);
  assert.is(series(`relay_requests_total{relay="api",route="/ok",method="POST",status_class="2xx",target="${target}"}`), 1);
  assert.is(series(`relay_requests_total{relay="api",route="other",method="GET",status_class="5xx",target="${target}"}`), 1);
  assert.is(series(`relay_requests_total{relay="api",route="/flaky",method="GET",status_class="2xx",target="${target}"}`), 1);
  assert.is(series(`relay_request_duration_seconds_count{relay="api",route="/ok",method="GET",status_class="2xx"}`), 1);
  assert.is(series(`relay_request_duration_seconds_bucket{le="+Inf",relay="api",route="/ok",method="GET",status_class="2xx"}`), 1);
  assert.is(series(`relay_upstream_attempts_total{relay="api",target="${target}",outcome="2xx"}`), 3);
  assert.is(series(`relay_upstream_attempts_total{relay="api",target="${target}",outcome="5xx"}`), 2);
  assert.is(series(`relay_upstream_attempt_duration_seconds_count{relay="api",target="${target}",outcome="5xx"}`), 2);
  assert.is(series(`relay_upstream_retries_total{relay="api",target="${target}"}`), 1);
  assert.is(series('relay_requests_in_flight{relay="api"}'), 0);
  assert.is(series('relay_request_body_bytes_total{relay="api"}'), 3);
  assert.is(series('relay_response_body_bytes_total{relay="api"}'), 8);
  // The WebSocket relay reports under the same name (explicit relay label), with its own target.
  assert.is(series(`relay_requests_total{relay="api",route="/chat",method="GET",status_class="1xx",target="http://${wsHost}"}`), 1);
  assert.is(series('relay_websocket_sessions_total{relay="api"}'), 1);
  assert.is(series('relay_websocket_sessions_open{relay="api"}'), 0);
  assert.ok(series('relay_websocket_bytes_total{relay="api",direction="in"}')! > 0);
  assert.ok(series('relay_websocket_bytes_total{relay="api",direction="out"}')! > 0);
  assert.is(series('relay_websocket_messages_total{relay="api",direction="in"}'), 1);
  assert.is(series('relay_websocket_messages_total{relay="api",direction="out"}'), 1);
  // Paths never become labels: no series names /bad.
  assert.not.ok(text.includes('/bad'));
  await wsServed.close();
  await wsUpstream.close();
  await served.close();
  await upstream.close();
});

for (const [mode, options] of [['transparent', {}], ['terminating', { onClientMessage: () => undefined }]] as const) {
  test(`${mode} WebSocket session: messages both ways and client-connection bytes, exact`, async () => {
    const upstream = await startEchoWs();
    const registry = new Registry();
    const m = metrics({ registry, relay: 'ws' });
    const served = await serveWithUpgrades({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt], websocket: websocket(options) });
    const messages = Array.from({ length: 7 }, (_, index) => `message number ${index}`);
    assert.equal(await echoSession(`${served.url}/chat`, messages), messages);
    let text = await registry.metrics();
    for (let tries = 0; tries < 100 && value(text, 'relay_websocket_sessions_total{relay="ws"}') !== 1; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      text = await registry.metrics();
    }
    assert.is(value(text, 'relay_websocket_sessions_total{relay="ws"}'), 1);
    assert.is(value(text, 'relay_websocket_messages_total{relay="ws",direction="in"}'), 7);
    assert.is(value(text, 'relay_websocket_messages_total{relay="ws",direction="out"}'), 7);
    // From the client: each message masked (2 + 4 header bytes), then the close frame (code 1000, reason "done").
    const payload = messages.reduce((sum, message) => sum + message.length, 0);
    assert.is(value(text, 'relay_websocket_bytes_total{relay="ws",direction="in"}'), payload + 7 * 6 + (6 + 2 + 4));
    // To the client: the 101 head, the echoes unmasked (2 header bytes each), the close frame.
    assert.ok(value(text, 'relay_websocket_bytes_total{relay="ws",direction="out"}')! > payload + 7 * 2 + 4);
    await served.close();
    await upstream.close();
  });
}

test('in-flight and open sessions are live gauges', async () => {
  let release: () => void = () => {};
  const upstream = await startUpstream((_req, res) => {
    release = () => res.end('late');
  });
  const registry = new Registry();
  const m = metrics({ registry });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] }));
  const pending = fetchRaw(`${served.url}/slow`);
  const relayLabel = new URL(upstream.url).host;
  assert.ok(await waitFor(() => upstream.requests.length === 1));
  assert.is(value(await registry.metrics(), `relay_requests_in_flight{relay="${relayLabel}"}`), 1);
  release();
  await pending;
  assert.ok(await waitFor(() => served.relay.inFlight === 0));
  assert.is(value(await registry.metrics(), `relay_requests_in_flight{relay="${relayLabel}"}`), 0);
  await served.close();
  await upstream.close();
});

test('an open WebSocket session is an open session, not a request in flight', async () => {
  const upstream = await startEchoWs();
  const registry = new Registry();
  const m = metrics({ registry, relay: 'chat' });
  const served = await serveWithUpgrades({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] });
  const ws = new WebSocket(served.url.replace('http:', 'ws:'));
  await new Promise((resolve) => ws.once('open', resolve));
  const open = await registry.metrics();
  assert.is(value(open, 'relay_websocket_sessions_open{relay="chat"}'), 1);
  assert.is(value(open, 'relay_requests_in_flight{relay="chat"}'), 0);
  ws.close();
  await new Promise((resolve) => ws.once('close', resolve));
  let closed = await registry.metrics();
  for (let tries = 0; tries < 100 && value(closed, 'relay_websocket_sessions_open{relay="chat"}') !== 0; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    closed = await registry.metrics();
  }
  assert.is(value(closed, 'relay_websocket_sessions_open{relay="chat"}'), 0);
  assert.is(value(closed, 'relay_requests_in_flight{relay="chat"}'), 0);
  await served.close();
  await upstream.close();
});

test('custom buckets and prefix; the /metrics handler serves the text format, 405 for other methods', async () => {
  const upstream = await scripted([200]);
  const registry = new Registry();
  const m = metrics({ registry, prefix: 'edge_', buckets: [0.5, 1], attemptBuckets: [2] });
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] });
  const served = await serveRelay(relay, (req, res) => (req.url === '/metrics' ? m.handler(req, res) : relay.handle(req, res)));
  await fetchRaw(`${served.url}/x`);
  const scrape = await fetchRaw(`${served.url}/metrics`);
  assert.is(scrape.status, 200);
  assert.match(String(scrape.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.match(scrape.text, /edge_request_duration_seconds_bucket\{le="0\.5",relay="[^"]+",route="",method="GET",status_class="2xx"\} 1/);
  assert.match(scrape.text, /edge_upstream_attempt_duration_seconds_bucket\{le="2",/);
  assert.not.ok(scrape.text.includes('le="0.005"'));
  const post = await fetchRaw(`${served.url}/metrics`, { method: 'POST' });
  assert.is(post.status, 405);
  assert.is(post.headers.allow, 'GET, HEAD');
  await served.close();
  await upstream.close();
});

test('two relays on one registry share the metrics (no duplicate registration)', async () => {
  const registry = new Registry();
  const a = metrics({ registry, relay: 'a' });
  const b = metrics({ registry, relay: 'b' });
  createRelay({ targetBaseUrl: 'http://127.0.0.1:1', stages: [a.request, a.attempt] });
  createRelay({ targetBaseUrl: 'http://127.0.0.1:2', stages: [b.request, b.attempt] });
  const text = await registry.metrics();
  assert.match(text, /relay_requests_in_flight\{relay="a"\} 0/);
  assert.match(text, /relay_requests_in_flight\{relay="b"\} 0/);
});

/** The registry's text once `ready` holds for it (a request is counted when its body ends, after the client has it). */
async function scrapeWhen(registry: Registry, ready: (text: string) => boolean): Promise<string> {
  let text = '';
  for (let round = 0; round < 100; round++) {
    text = await registry.metrics();
    if (ready(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return text;
}

/** Every sample (name and labels) that appears more than once in a scrape: Prometheus refuses such a scrape. */
function duplicates(text: string): string[] {
  const seen = new Set<string>();
  const twice: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sample = line.slice(0, line.lastIndexOf(' '));
    if (seen.has(sample)) twice.push(sample);
    seen.add(sample);
  }
  return twice;
}

test('relays under one relay label (two mounts; the gateway\'s old and new relay across a reload) render each series once', async () => {
  const upstream = await scripted([200]);
  const registry = new Registry();
  const shared = metrics({ registry, relay: 'api' });
  const one = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/one', stages: [shared.request, shared.attempt] }));
  const two = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/two', stages: [shared.request, shared.attempt] }));
  await fetchRaw(`${one.url}/one/x`);
  await fetchRaw(`${two.url}/two/x`);
  await one.close();
  // A reload: a new metrics() from the same options, a new relay, the same registry.
  const reloaded = metrics({ registry, relay: 'api' });
  const three = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/one', stages: [reloaded.request, reloaded.attempt] }));
  await fetchRaw(`${three.url}/one/x`);
  const text = await scrapeWhen(registry, (scraped) => value(scraped, 'relay_request_duration_seconds_count{relay="api",route="",method="GET",status_class="2xx"}') === 3);
  assert.equal(duplicates(text), []);
  assert.is(value(text, `relay_requests_total{relay="api",route="",method="GET",status_class="2xx",target="${upstream.url}"}`), 3);
  assert.is(value(text, 'relay_request_duration_seconds_count{relay="api",route="",method="GET",status_class="2xx"}'), 3);
  assert.is(value(text, `relay_upstream_attempt_duration_seconds_count{relay="api",target="${upstream.url}",outcome="2xx"}`), 3);
  assert.is(value(text, 'relay_requests_in_flight{relay="api"}'), 0);
  await two.close();
  await three.close();
  await upstream.close();
});

test('registry.resetMetrics() resets the counters and histograms, increments not yet scraped included', async () => {
  const upstream = await scripted([200]);
  const registry = new Registry();
  const m = metrics({ registry, relay: 'reset' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] }));
  const counted = (text: string) => value(text, 'relay_request_duration_seconds_count{relay="reset",route="",method="GET",status_class="2xx"}') === 1;
  await fetchRaw(`${served.url}/`);
  // Counted, not yet scraped (the in-flight gauge alone is read): the counter's increment waits for a scrape.
  const inFlight = registry.getSingleMetric('relay_requests_in_flight')!;
  for (let round = 0; round < 100 && (await inFlight.get()).values[0]?.value !== 0; round++) await new Promise((resolve) => setTimeout(resolve, 20));
  registry.resetMetrics();
  await fetchRaw(`${served.url}/`);
  const text = await scrapeWhen(registry, counted);
  assert.is(value(text, `relay_requests_total{relay="reset",route="",method="GET",status_class="2xx",target="${upstream.url}"}`), 1);
  assert.is(value(text, 'relay_request_duration_seconds_count{relay="reset",route="",method="GET",status_class="2xx"}'), 1);
  await served.close();
  await upstream.close();
});

test('after registry.clear() (a test suite\'s or a hot reload\'s reset), a new metrics() on that registry is registered and scraped', async () => {
  const upstream = await scripted([200]);
  const registry = new Registry();
  metrics({ registry, relay: 'before' });
  registry.clear();
  const m = metrics({ registry, relay: 'after' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] }));
  await fetchRaw(`${served.url}/`);
  const text = await scrapeWhen(registry, (scraped) => scraped.includes('relay_requests_total{relay="after"'));
  assert.is(value(text, `relay_requests_total{relay="after",route="",method="GET",status_class="2xx",target="${upstream.url}"}`), 1);
  await served.close();
  await upstream.close();
});

test('targets: false labels no series with the upstream\'s origin (a public /metrics names no internal address)', async () => {
  const upstream = await scripted([200, 503, 200]);
  const registry = new Registry();
  const m = metrics({ registry, relay: 'public', targets: false });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [m.request, retry({ maxRetries: 1, backoffFactor: 1 }), m.attempt] }));
  await fetchRaw(`${served.url}/`);
  await fetchRaw(`${served.url}/`);
  const text = await scrapeWhen(registry, (scraped) => value(scraped, 'relay_upstream_retries_total{relay="public",target=""}') === 1);
  assert.is(value(text, 'relay_requests_total{relay="public",route="",method="GET",status_class="2xx",target=""}'), 2);
  assert.is(value(text, 'relay_upstream_attempts_total{relay="public",target="",outcome="5xx"}'), 1);
  assert.not.ok(text.includes(new URL(upstream.url).host), text);
  await served.close();
  await upstream.close();
});

test('a second metrics() on a registry with other buckets is refused, not silently given the first one\'s', () => {
  const registry = new Registry();
  metrics({ registry, buckets: [1, 2] });
  assert.not.throws(() => metrics({ registry, buckets: [1, 2], relay: 'same' }));
  assert.throws(() => metrics({ registry, buckets: [0.25, 0.5] }), /already have other buckets/);
  assert.throws(() => metrics({ registry, buckets: [1, 2], attemptBuckets: [3] }), /already have other buckets/);
  assert.not.throws(() => metrics({ registry, buckets: [0.25, 0.5], prefix: 'edge_' }));
});

test('a WebSocket client that leaves during the handshake is a 499, not a session', async () => {
  const upstream = await startLateWs();
  const registry = new Registry();
  const m = metrics({ registry, relay: 'gone' });
  const served = await serveWithUpgrades({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] });
  await handshakeAndLeave(served.url, upstream);
  const counted = `relay_requests_total{relay="gone",route="",method="GET",status_class="4xx",target="${upstream.url}"}`;
  const text = await scrapeWhen(registry, (scraped) => value(scraped, counted) === 1);
  assert.is(value(text, counted), 1);
  assert.is(value(text, `relay_requests_total{relay="gone",route="",method="GET",status_class="1xx",target="${upstream.url}"}`), undefined);
  assert.is(value(text, 'relay_websocket_sessions_total{relay="gone"}'), undefined);
  assert.is(value(text, 'relay_websocket_sessions_open{relay="gone"}'), 0);
  assert.is(value(text, 'relay_requests_in_flight{relay="gone"}'), 0);
  await served.close();
  await upstream.close();
});

test('metricsHandler() answers HEAD without a body', async () => {
  const registry = new Registry();
  const handler = metricsHandler(registry);
  const { createServer } = await import('node:http');
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const status = await new Promise<number>((resolve) => {
    httpRequest({ host: '127.0.0.1', port, method: 'HEAD', path: '/metrics' }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    }).end();
  });
  assert.is(status, 200);
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('a buffered histogram renders exactly what a prom-client Histogram fed the same values renders', async () => {
  const mine = new Registry();
  const theirs = new Registry();
  const labelNames = ['relay', 'outcome'];
  const buffered = new BufferedHistogram(mine, 'h_seconds', 'help', labelNames, [0.1, 1, 5]);
  const plain = new Histogram({ name: 'h_seconds', help: 'help', labelNames, buckets: [0.1, 1, 5], registers: [theirs] });
  const series = [buffered.series({ relay: 'a', outcome: '2xx' }), buffered.series({ relay: 'a', outcome: '5xx' }), buffered.series({ relay: 'b', outcome: '2xx' })];
  // Bounds are inclusive (le): 0.1 falls in the 0.1 bucket, 7 only in +Inf; the third series stays empty and absent.
  const values = [[0.05, 0.1, 0.1000001, 1, 4.2, 7], [2.5]];
  values.forEach((list, index) => {
    for (const seconds of list) {
      series[index]!.observe(seconds);
      plain.observe(series[index]!.labels, seconds);
    }
  });
  assert.is(await mine.metrics(), await theirs.metrics());
  const json = async (registry: Registry): Promise<unknown> => JSON.parse(JSON.stringify(await registry.getMetricsAsJSON()));
  assert.equal(await json(mine), await json(theirs));
  mine.resetMetrics();
  theirs.resetMetrics();
  assert.is(await mine.metrics(), await theirs.metrics());
});

test('options are checked: buckets, prefix, routes, unknown keys', () => {
  assert.throws(() => metrics({ bucket: [1] } as never), /unknown option "bucket" \(did you mean "buckets"\?/);
  assert.throws(() => metrics({ buckets: [1, 0.5] }), /increasing/);
  assert.throws(() => metrics({ buckets: [-1] }), /buckets\[0\]/);
  assert.throws(() => metrics({ prefix: '9x' }), /prefix/);
  assert.throws(() => metrics({ routes: ['users/:id'] }), /routes\[0\] must start with "\/"/);
  assert.throws(() => metrics({ routes: ['/a*b'] }), /literal segment/);
  assert.throws(() => metrics({ registry: {} as never }), /prom-client Registry/);
});

test.run();
