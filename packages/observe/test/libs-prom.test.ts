// @relay/observe's metrics with prom-client's default registry and passed ones, scraped over
// HTTP by a real client and read by a strict line reader (parse-prometheus-text-format 1.1.1 drops
// the _sum, _count and labels of labelled histograms, so it cannot check these): HELP/TYPE once, no duplicate series, histogram buckets consistent, labels escaped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AggregatorRegistry, Registry, register } from 'prom-client';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { metrics, metricsHandler } from '../src/index.js';
import { echoSession, serveWithUpgrades, startEchoWs } from './helpers.js';

/** One sample line: its metric name, its labels (unescaped) and its value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict reader of one sample line of the text format (0.0.4): name, `{label="escaped",…}`, value. */
function parseSample(line: string): Sample {
  const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  assert.ok(head, `a metric name at the start of ${JSON.stringify(line)}`);
  const name = head![1]!;
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === '{') {
    at++;
    while (line[at] !== '}') {
      const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(at));
      assert.ok(label, `a label at ${at} of ${JSON.stringify(line)}`);
      at += label![0].length;
      let value = '';
      for (;;) {
        const char = line[at++];
        assert.ok(char !== undefined && char !== '\n', `an unterminated label value in ${JSON.stringify(line)}`);
        if (char === '"') break;
        if (char === '\\') {
          const next = line[at++];
          assert.ok(next === 'n' || next === '\\' || next === '"', `a bad escape in ${JSON.stringify(line)}`);
          value += next === 'n' ? '\n' : next;
        } else value += char;
      }
      assert.not.ok(label![1]! in labels, `label ${label![1]} twice in ${JSON.stringify(line)}`);
      labels[label![1]!] = value;
      if (line[at] === ',') at++;
    }
    at++;
  }
  assert.is(line[at], ' ', `a space before the value in ${JSON.stringify(line)}`);
  const text = line.slice(at + 1);
  assert.match(text, /^(?:[-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|Inf)|NaN)$/i, `a number value in ${JSON.stringify(line)}`);
  return { name, labels, value: Number(text.replace('Inf', 'Infinity')) };
}

/** Structural checks of a text exposition; returns its samples. */
function checkExposition(text: string): Sample[] {
  const helps = new Map<string, number>();
  const types = new Map<string, string>();
  const seen = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const help = /^# HELP (\S+) /.exec(line);
    if (help) {
      helps.set(help[1]!, (helps.get(help[1]!) ?? 0) + 1);
      continue;
    }
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      assert.not.ok(types.has(type[1]!), `TYPE of ${type[1]} once`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const one = parseSample(line);
    const key = `${one.name}${JSON.stringify(Object.entries(one.labels).sort())}`;
    assert.not.ok(seen.has(key), `duplicate series ${line}`);
    seen.add(key);
    samples.push(one);
  }
  for (const [name, count] of helps) assert.is(count, 1, `HELP of ${name} once`);
  // Histograms: per series, buckets cumulative, +Inf present and equal to _count, _sum present.
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const bySeries = new Map<string, Sample[]>();
    for (const one of samples.filter((each) => each.name === `${family}_bucket`)) {
      const { le, ...rest } = one.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      bySeries.set(key, [...(bySeries.get(key) ?? []), one]);
    }
    for (const [key, buckets] of bySeries) {
      const ordered = buckets.map((one) => [one.labels.le === '+Inf' ? Infinity : Number(one.labels.le), one.value] as const).sort((a, b) => a[0] - b[0]);
      for (let index = 1; index < ordered.length; index++) assert.ok(ordered[index]![1] >= ordered[index - 1]![1], `${family} buckets cumulative`);
      assert.is(ordered.at(-1)![0], Infinity, `${family} has +Inf`);
      const count = samples.find((one) => one.name === `${family}_count` && JSON.stringify(Object.entries(one.labels).sort()) === key);
      const sum = samples.find((one) => one.name === `${family}_sum` && JSON.stringify(Object.entries(one.labels).sort()) === key);
      assert.ok(count && sum, `${family} ${key} has _count and _sum`);
      assert.is(ordered.at(-1)![1], count!.value, `${family} +Inf == _count`);
    }
  }
  return samples;
}

/** The value of the one sample of `name` whose labels include `labels` (a histogram's family name: its _count). */
function sample(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const matching = samples.filter((one) => (one.name === name || one.name === `${name}_count`) && Object.entries(labels).every(([key, value]) => one.labels[key] === value));
  assert.ok(matching.length <= 1, `one sample of ${name} ${JSON.stringify(labels)}, got ${matching.length}`);
  return matching[0]?.value;
}

test('default registry: metrics() with no registry, /metrics over HTTP, parsed, after 2xx, 5xx, a retry and a WebSocket session', async () => {
  let flaky = 0;
  const upstream = await startUpstream((req, res) => {
    const status = req.url === '/bad' ? 500 : req.url === '/flaky' && flaky++ === 0 ? 503 : 200;
    res.writeHead(status, { 'content-length': 2 }).end('ok');
  });
  const m = metrics({ routes: ['/ok', '/flaky'] });
  assert.is(m.registry, register);
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [m.request, retry({ maxRetries: 1, backoffFactor: 1 }), m.attempt] });
  const serveMetrics = metricsHandler();
  const served = await serveRelay(relay, (req, res) => (req.url === '/metrics' ? serveMetrics(req, res) : relay.handle(req, res)));
  const wsUpstream = await startEchoWs();
  const wsServed = await serveWithUpgrades({ targetBaseUrl: wsUpstream.url, stages: [m.request, m.attempt] });
  try {
    assert.is((await fetchRaw(`${served.url}/ok`)).status, 200);
    assert.is((await fetchRaw(`${served.url}/bad`)).status, 500);
    assert.is((await fetchRaw(`${served.url}/flaky`)).status, 200);
    await echoSession(`${wsServed.url}/chat`, ['a', 'b']);
    const relayLabel = new URL(upstream.url).host;
    const wsLabel = new URL(wsUpstream.url).host;
    let parsed: Sample[] = [];
    let response = await fetchRaw(`${served.url}/metrics`);
    let settled = false;
    for (let round = 0; round < 100 && !settled; round++) {
      response = await fetchRaw(`${served.url}/metrics`);
      parsed = checkExposition(response.text);
      settled = sample(parsed, 'relay_websocket_sessions_total', { relay: wsLabel }) === 1;
      if (!settled) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(settled, 'the session is counted');
    assert.is(response.status, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    parsed = checkExposition(response.text);
    const target = upstream.url;
    assert.is(sample(parsed, 'relay_requests_total', { relay: relayLabel, route: '/ok', status_class: '2xx', target }), 1);
    assert.is(sample(parsed, 'relay_requests_total', { relay: relayLabel, route: 'other', status_class: '5xx', target }), 1);
    assert.is(sample(parsed, 'relay_requests_total', { relay: relayLabel, route: '/flaky', status_class: '2xx', target }), 1);
    assert.is(sample(parsed, 'relay_upstream_attempts_total', { relay: relayLabel, outcome: '5xx' }), 2);
    assert.is(sample(parsed, 'relay_upstream_attempts_total', { relay: relayLabel, outcome: '2xx' }), 2);
    assert.is(sample(parsed, 'relay_upstream_retries_total', { relay: relayLabel }), 1);
    assert.is(sample(parsed, 'relay_request_duration_seconds', { relay: relayLabel, route: '/ok' }), 1);
    assert.is(sample(parsed, 'relay_upstream_attempt_duration_seconds', { relay: relayLabel, outcome: '5xx' }), 2);
    assert.is(sample(parsed, 'relay_requests_in_flight', { relay: relayLabel }), 0);
    assert.is(sample(parsed, 'relay_requests_total', { relay: wsLabel, status_class: '1xx' }), 1);
    assert.is(sample(parsed, 'relay_websocket_messages_total', { relay: wsLabel, direction: 'in' }), 2);
    assert.is(sample(parsed, 'relay_websocket_messages_total', { relay: wsLabel, direction: 'out' }), 2);
    assert.is(sample(parsed, 'relay_websocket_sessions_open', { relay: wsLabel }), 0);
  } finally {
    await wsServed.close();
    await wsUpstream.close();
    await served.close();
    await upstream.close();
  }
});

test('label values with a quote, a backslash and a newline are escaped; the parser reads them back', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'));
  const registry = new Registry();
  const name = 'we"ird\\relay\nname';
  const m = metrics({ registry, relay: name });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] }));
  try {
    assert.is((await fetchRaw(`${served.url}/`)).status, 200);
    const text = await registry.metrics();
    assert.ok(text.includes('relay="we\\"ird\\\\relay\\nname"'));
    const parsed = checkExposition(text);
    assert.is(sample(parsed, 'relay_requests_total', { relay: name }), 1);
    assert.is(sample(parsed, 'relay_request_duration_seconds', { relay: name }), 1);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('registry.setDefaultLabels: every series, histograms included, carries the default label once', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'));
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'edge' });
  const m = metrics({ registry, relay: 'api' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] }));
  try {
    assert.is((await fetchRaw(`${served.url}/`)).status, 200);
    const text = await registry.metrics();
    const parsed = checkExposition(text);
    for (const line of text.split('\n').filter((each) => each.startsWith('relay_'))) assert.ok(line.includes('service="edge"'), line);
    assert.is(sample(parsed, 'relay_request_duration_seconds', { relay: 'api', service: 'edge' }), 1);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('an OpenMetrics registry: counters as _total samples, histograms consistent, # EOF', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'));
  const registry = new Registry();
  // prom-client's typings leave the content type out of the constructor: set it after.
  (registry as unknown as { setContentType(type: string): void }).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const m = metrics({ registry, relay: 'om' });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] }));
  try {
    assert.is((await fetchRaw(`${served.url}/`)).status, 200);
    const text = await registry.metrics();
    assert.ok(text.endsWith('# EOF\n'));
    assert.match(text, /^# TYPE relay_requests counter$/m);
    assert.match(text, /^relay_requests_total\{relay="om",route="",method="GET",status_class="2xx",target="[^"]+"\} 1$/m);
    assert.match(text, /^relay_request_duration_seconds_count\{relay="om",route="",method="GET",status_class="2xx"\} 1$/m);
    assert.not.match(text, /_total_total/);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('cluster: AggregatorRegistry.aggregate of two workers\' JSON sums counters and histograms', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'));
  const registries = [new Registry(), new Registry()];
  const relays = registries.map((registry) => {
    const m = metrics({ registry, relay: 'api' });
    return createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] });
  });
  const served = await Promise.all(relays.map((relay) => serveRelay(relay)));
  try {
    for (const each of served) assert.is((await fetchRaw(`${each.url}/`)).status, 200);
    const json = await Promise.all(registries.map((registry) => registry.getMetricsAsJSON()));
    const text = await AggregatorRegistry.aggregate(json).metrics();
    const parsed = checkExposition(text);
    assert.is(sample(parsed, 'relay_requests_total', { relay: 'api' }), 2);
    assert.is(sample(parsed, 'relay_request_duration_seconds', { relay: 'api' }), 2);
  } finally {
    for (const each of served) await each.close();
    await upstream.close();
  }
});

test.run();
