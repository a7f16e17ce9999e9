// Review s37 (issue 18, @relay/observe metrics): what a Prometheus scrape says while traffic is
// still flowing (a WebSocket session that has not closed yet), and how methods outside the
// standard set are labelled. prom-client registry, real ws client and upstream.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Registry } from 'prom-client';
import { WebSocket } from 'ws';
import { balance } from '@relay/balance';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { metrics } from '../src/index.js';
import { serveWithUpgrades, startEchoWs } from './helpers.js';

/** The value of one series in a scrape, `undefined` when it is absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('a scrape during an open WebSocket session counts the messages and bytes it has relayed so far', async () => {
  // Issue 18: "WebSocket sessions open and messages/bytes relayed". A counter is a running total: Envoy's
  // downstream_cx_rx_bytes_total / _tx_bytes_total grow while a connection is open, so rate() shows the traffic of
  // long-lived connections as it happens. Relay adds a session's messages and bytes only when it closes: a chat
  // session open for hours shows nothing, then its whole history in one scrape interval.
  const upstream = await startEchoWs();
  const registry = new Registry();
  const m = metrics({ registry, relay: 'chat' });
  const served = await serveWithUpgrades({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] });
  const ws = new WebSocket(`${served.url.replace('http:', 'ws:')}/chat`);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    for (let index = 0; index < 3; index++) {
      const echoed = new Promise<void>((resolve) => ws.once('message', () => resolve()));
      ws.send(`message ${index}`);
      await echoed;
    }
    const text = await registry.metrics();
    assert.is(value(text, 'relay_websocket_sessions_open{relay="chat"}'), 1);
    assert.is(value(text, 'relay_websocket_messages_total{relay="chat",direction="in"}'), 3, 'messages from the client so far');
    assert.is(value(text, 'relay_websocket_messages_total{relay="chat",direction="out"}'), 3, 'messages to the client so far');
    assert.ok((value(text, 'relay_websocket_bytes_total{relay="chat",direction="in"}') ?? 0) > 0, 'bytes from the client so far');
    assert.ok((value(text, 'relay_websocket_bytes_total{relay="chat",direction="out"}') ?? 0) > 0, 'bytes to the client so far');
    // At the close only the remainder is added: nothing is counted twice.
    const bytesIn = value(text, 'relay_websocket_bytes_total{relay="chat",direction="in"}')!;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.close(1000, 'done');
    await closed;
    let after = await registry.metrics();
    for (let tries = 0; tries < 100 && value(after, 'relay_websocket_sessions_open{relay="chat"}') !== 0; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await registry.metrics();
    }
    assert.is(value(after, 'relay_websocket_sessions_total{relay="chat"}'), 1);
    assert.is(value(after, 'relay_websocket_messages_total{relay="chat",direction="in"}'), 3, 'each message once');
    assert.is(value(after, 'relay_websocket_messages_total{relay="chat",direction="out"}'), 3, 'each message once');
    const closedBytesIn = value(after, 'relay_websocket_bytes_total{relay="chat",direction="in"}')!;
    assert.ok(closedBytesIn > bytesIn && closedBytesIn < bytesIn + 64, `the close frame added, not the session again: ${bytesIn} then ${closedBytesIn}`);
  } finally {
    if (ws.readyState !== WebSocket.CLOSED) {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      ws.close(1000, 'done');
      await closed;
    }
    await served.close();
    await upstream.close();
  }
});

test('regression: methods outside the nine standard ones share method="OTHER"; paths stay out of the labels', async () => {
  // Issue 18: "Label cardinality is bounded". Prometheus naming practice: no unbounded label values. PROPFIND, PURGE and
  // QUERY all reach node's parser; each must not make its own series.
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-length': 2 }).end('ok');
  });
  const registry = new Registry();
  const m = metrics({ registry, relay: 'dav', routes: ['/files/:name'] });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] }));
  try {
    for (const method of ['PROPFIND', 'PURGE', 'QUERY']) assert.is((await fetchRaw(`${served.url}/files/a-${method}/deep`, { method })).status, 200);
    assert.is((await fetchRaw(`${served.url}/files/report.txt`, { method: 'DELETE' })).status, 200);
    const text = await registry.metrics();
    const target = upstream.url;
    assert.is(value(text, `relay_requests_total{relay="dav",route="other",method="OTHER",status_class="2xx",target="${target}"}`), 3);
    assert.is(value(text, `relay_requests_total{relay="dav",route="/files/:name",method="DELETE",status_class="2xx",target="${target}"}`), 1);
    for (const method of ['PROPFIND', 'PURGE', 'QUERY']) assert.not.ok(text.includes(`method="${method}"`), method);
    assert.not.ok(text.includes('report.txt') || text.includes('/deep'), 'no path is a label');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('targets: false with pools: the per-target gauges name each target by its position in the pool, never its URL', async () => {
  // README: "`false` leaves `target=\"\"`, so a public `/metrics` names no internal address". The pool gauges need a
  // target label to keep the targets apart: their position in the pool ("0", "1", ...) does, and names no address.
  const ups = await Promise.all(['a', 'b'].map((name) => startUpstream((_req, res) => res.writeHead(200, { 'content-length': 1 }).end(name))));
  const pool = balance({ targets: ups.map((up) => up.url) });
  const registry = new Registry();
  const m = metrics({ registry, relay: 'api', pools: { api: pool }, targets: false });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [m.request, pool, m.attempt] }));
  try {
    for (let index = 0; index < 4; index++) assert.is((await fetchRaw(served.url)).status, 200);
    const text = await registry.metrics();
    for (const position of ['0', '1']) {
      assert.is(value(text, `relay_upstream_target_healthy{relay="api",pool="api",target="${position}"}`), 1, `target ${position}`);
      assert.is(value(text, `relay_upstream_target_in_flight{relay="api",pool="api",target="${position}"}`), 0);
    }
    assert.is(value(text, 'relay_requests_total{relay="api",route="",method="GET",status_class="2xx",target=""}'), 4);
    for (const up of ups) assert.not.ok(text.includes(up.url) || text.includes(new URL(up.url).host), `${up.url} is not in the scrape`);
  } finally {
    pool.stop();
    await served.close();
    await Promise.all(ups.map((up) => up.close()));
  }
});

test.run();
