// Review s37 (issue 17, upstream pools). Black-box against nginx's and Envoy's documented behaviour: weighted
// least-request at low load, WebSocket sessions as load (least-request, circuit), how long an attempt may wait for a
// circuit slot, the outlier counters after an ejection ends, health checks of an h2c target, hashing when a target is
// ejected and comes back, and pool.stop() closing the health checks' sockets.
// Real upstreams on 127.0.0.1, real clients; everything opened is closed.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createServer as createH2cServer } from 'node:http2';
import { createRelay, http2Transport } from '@relay/core';
import { websocket } from '@relay/ws';
import { close, fetchRaw, listen, listenHttp2, serveRelay, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { balance, targetPicker } from '../src/index.js';
import { countBy, load, named } from './helpers.js';

// ---------------------------------------------------------------------------------------------------------------------
// Weighted least-request when nothing is in flight

test('least-request with unequal weights and nothing in flight follows the weights (targetPicker: 1:1:1:1:10 gives the heavy target 10/14 of 3 000 picks, ±5 %)', () => {
  // Envoy (load_balancers.html#weighted-least-request): "If any host in the cluster has a different load balancing
  // weight, the load balancer switches to a mode where it uses a weighted round robin schedule in which weights are
  // dynamically adjusted based on the host's request load at the time of selection": weight / (active + 1)^bias, so
  // with no request active the split is the weights. nginx least_conn: "taking into account weights"; ties go
  // weighted round robin. README: 'least-request' is "(power of two choices, weighted)".
  const targets = [1, 2, 3, 4].map((i) => `http://127.0.0.${i}:8000`);
  const heavy = 'http://127.0.0.5:8000';
  const picker = targetPicker({ targets: [...targets, { url: heavy, weight: 10 }], strategy: 'least-request' });
  let heavyPicks = 0;
  const total = 3000;
  for (let i = 0; i < total; i++) {
    const picked = picker.pick();
    if (picked.url === heavy) heavyPicks++;
    picked.release(); // one request at a time: nothing is in flight at the next pick
  }
  const share = heavyPicks / total;
  assert.ok(Math.abs(share - 10 / 14) <= 0.05, `weight 10 of 14 got ${(share * 100).toFixed(1)} % of the picks, expected ${((10 / 14) * 100).toFixed(1)} % ±5`);
});

test("least-request with unequal weights, requests one at a time through the stage: weights 1:1:2 give c half the requests (±7 %)", async () => {
  // Same reference as above; issue 17: "weights give the expected split".
  const ups = await Promise.all(['a', 'b', 'c'].map((name) => named(name)));
  const pool = balance({ targets: [ups[0]!.url, ups[1]!.url, { url: ups[2]!.url, weight: 2 }], strategy: 'least-request' });
  const served = await serveRelay(createRelay({ targetBaseUrl: ups[0]!.url, stages: [pool] }));
  try {
    const hits = await load(served.url, 600, 1);
    const counts = countBy(hits);
    const share = (counts.c ?? 0) / 600;
    assert.ok(Math.abs(share - 0.5) <= 0.07, `c (weight 2 of 4) served ${(share * 100).toFixed(1)} %: ${JSON.stringify(counts)}`);
  } finally {
    pool.stop();
    await served.close();
    for (const up of ups) await up.close();
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// WebSocket sessions are load

/** A WebSocket echo upstream on its own http server. */
async function wsUpstream(): Promise<{ url: string; sessions: () => number; close: () => Promise<void> }> {
  const server = createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })));
  const url = await listen(server);
  return {
    url,
    sessions: () => wss.clients.size,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await close(server);
    },
  };
}

/** Opens a client WebSocket; resolves with it once open, or with the refused handshake's status. */
function openWs(url: string): Promise<{ ws: WebSocket | null; status: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      res.resume();
      resolve({ ws: null, status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', () => resolve({ ws: null, status: 0 }));
  });
}

test('an open WebSocket session counts as in flight on its target (least-request and circuit see it) until it closes', async () => {
  // Envoy: an upgraded WebSocket is an HTTP stream, an active request for its whole life (rq_active, the
  // least-request count and circuit_breakers max_requests all see it). nginx least_conn counts active connections,
  // a proxied WebSocket among them. README: "WebSocket handshakes go through the same stage and are counted like
  // requests" and the circuit limits "attempts in progress on one target".
  const up = await wsUpstream();
  const pool = balance({ targets: [up.url], circuit: { maxRequests: 1 } });
  const relay = createRelay({ targetBaseUrl: up.url, stages: [pool], websocket: websocket() });
  await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const front = await listen(server);
  const wsUrl = front.replace('http:', 'ws:') + '/chat';
  const opened: WebSocket[] = [];
  try {
    const first = await openWs(wsUrl);
    assert.is(first.status, 101);
    opened.push(first.ws!);
    assert.ok(await waitFor(() => up.sessions() === 1, 2000), 'the session reached the upstream');
    const state = pool.targets()[0]!;
    const second = await openWs(wsUrl);
    if (second.ws !== null) opened.push(second.ws);
    assert.is(state.inFlight, 1, `a target holding an open WebSocket session reports inFlight ${state.inFlight}`);
    assert.is(second.status, 503, `a second session past circuit.maxRequests: 1 got ${second.status}, not the circuit's 503`);
    first.ws!.close();
    assert.ok(await waitFor(() => pool.targets()[0]!.inFlight === 0, 2000), 'the slot is released when the session closes');
    const third = await openWs(wsUrl);
    if (third.ws !== null) opened.push(third.ws);
    assert.is(third.status, 101, 'a new session is let in once the first one closed');
  } finally {
    for (const ws of opened) ws.terminate();
    pool.stop();
    await close(server);
    await relay.shutdown({ timeout: 1000 });
    await up.close();
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// Circuit breaking: a pending attempt does not wait without bound

test("an attempt waiting for a circuit slot is answered within the relay's timeout.pool when no slot frees (not held forever)", async () => {
  // Issue 17: "beyond it the attempt fails fast with 503 and a Retry-After instead of queueing without bound".
  // core: `timeout.pool` is how long an attempt waits for a free upstream connection (504 ERR_POOL_TIMEOUT), the
  // same wait for the same resource. nginx's `queue number timeout=` (default 60 s) answers an error once a queued
  // request's time is up; Envoy bounds a pending request by the route timeout.
  const streaming: ServerResponse[] = [];
  const up = await startUpstream((req, res) => {
    if (req.url === '/stream') {
      // An event stream: the head and a first chunk, then it stays open (it holds the circuit's only slot).
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: hello\n\n');
      streaming.push(res);
      return;
    }
    res.end('ok');
  });
  const pool = balance({ targets: [up.url], circuit: { maxRequests: 1, maxPending: 1 } });
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, timeout: { pool: 300 }, stages: [pool] }));
  const held = httpRequest(`${served.url}/stream`, { agent: false });
  held.on('error', () => {});
  held.end();
  try {
    await new Promise<void>((resolve) => held.once('response', (res) => { res.resume(); resolve(); }));
    assert.is(pool.targets()[0]!.inFlight, 1);
    const started = Date.now();
    const answer = await Promise.race([
      fetchRaw(`${served.url}/next`).then((response) => (response.headers['retry-after'] === '1' ? response.status : -response.status)),
      new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5000)),
    ]);
    const waited = Date.now() - started;
    assert.ok(answer !== -1, `the pending attempt got no answer in 5 s (pending: ${pool.targets()[0]!.pending}); timeout.pool is 300 ms`);
    // README: a wait that runs out gets the circuit's 503 with Retry-After, as an attempt past maxPending does.
    assert.is(answer, 503, `got ${answer} (negative: no Retry-After: 1)`);
    assert.is(pool.targets()[0]!.pending, 0, 'the expired wait left the queue');
    assert.ok(waited < 3000, `answered after ${waited} ms`);
  } finally {
    held.destroy();
    for (const res of streaming) res.destroy();
    pool.stop();
    await served.close();
    await up.close();
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// Outlier detection: an ejection that ends starts the count over

test('a target back from its ejection needs consecutiveFailures new failures in a row to be ejected again (failures seen while it was out are forgotten)', async () => {
  // Envoy outlier detection: unejecting a host resets its consecutive 5xx / gateway-failure counters
  // (DetectorImpl::unejectHost). README: "consecutiveFailures: failures in a row that eject a target"; a target
  // that returns has had no failure since. Here 5 concurrent attempts fail on b: the third ejects it, and the two
  // still in flight land while it is out.
  const a = await named('a');
  const b = await startUpstream((_req, res) => {
    setTimeout(() => {
      res.statusCode = 503;
      res.setHeader('x-upstream', 'b');
      res.end('b');
    }, 100);
  });
  const pool = balance({ targets: [a.url, b.url], outlier: { consecutiveFailures: 3, baseEjectionTime: 400 } });
  const served = await serveRelay(createRelay({ targetBaseUrl: a.url, stages: [pool] }));
  try {
    await load(served.url, 10, 10); // round robin: 5 to a, 5 to b, all at once
    const b0 = pool.targets()[1]!;
    assert.ok(b0.ejectedUntil > 0, 'b was ejected');
    assert.ok(await waitFor(() => pool.targets()[1]!.ejectedUntil === 0, 3000), 'b returned after its 400 ms');
    await load(served.url, 1, 1); // the pick that notices the return
    const state = pool.targets()[1]!;
    // One more failure on b (round robin sends it there within two requests) must not eject it again.
    await load(served.url, 2, 1);
    const after = pool.targets()[1]!;
    assert.is(after.ejectedUntil, 0, `b was ejected again after ${state.consecutiveFailures} counted failures (it had ${b0.consecutiveFailures} when ejected), at its first failure back`);
  } finally {
    pool.stop();
    await served.close();
    await a.close();
    await b.close();
  }
});

test('a target that health checks bring back from unhealthy starts its failure count over', async () => {
  // The same rule as a return from ejection (Envoy's unejectHost): failures counted before it went
  // unhealthy must not eject it at its first failure once it is healthy again.
  const a = await named('a');
  let failing = true;
  let healthFailing = false;
  const b = await startUpstream((req, res) => {
    res.statusCode = (req.url === '/health' ? healthFailing : failing) ? 503 : 200;
    res.end('b');
  });
  const pool = balance({
    targets: [a.url, b.url],
    outlier: { consecutiveFailures: 3, baseEjectionTime: 60_000 },
    healthCheck: { path: '/health', interval: 100, unhealthyThreshold: 1, healthyThreshold: 1 },
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: a.url, stages: [pool] }));
  try {
    await pool.start();
    await load(served.url, 4, 1); // round robin: two failures counted on b
    assert.is(pool.targets()[1]!.consecutiveFailures, 2);
    healthFailing = true;
    assert.ok(await waitFor(() => !pool.targets()[1]!.healthy, 3000), 'b failed its health checks');
    healthFailing = false;
    failing = false;
    assert.ok(await waitFor(() => pool.targets()[1]!.healthy, 3000), 'b passed its health checks again');
    assert.is(pool.targets()[1]!.consecutiveFailures, 0);
  } finally {
    pool.stop();
    await served.close();
    await a.close();
    await b.close();
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// Health checks of an HTTP/2 (h2c) target

test("health checks of an h2c target behind http2Transport speak HTTP/2 with healthCheck.protocol: 'http2': a serving target stays healthy", async () => {
  // README: health checks connect "as its requests connect" (TLS settings); Envoy's HTTP health checker has
  // codec_client_type (HTTP2 for an h2-only cluster) and a gRPC health checker; a gRPC/h2c-only service cannot
  // answer an HTTP/1.1 GET. Here every request through the relay succeeds, so the target is healthy. A stage is not
  // told its relay's transport, so the protocol is the check's option, as Envoy's codec_client_type is.
  const h2 = createH2cServer();
  h2.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'x-upstream': 'h2' });
    stream.end('ok');
  });
  const up = await listenHttp2(h2);
  const pool = balance({ targets: [up.url], healthCheck: { path: '/health', interval: 50, timeout: 500, unhealthyThreshold: 2, protocol: 'http2' } });
  const served = await serveRelay(createRelay({ targetBaseUrl: up.url, transport: http2Transport(), stages: [pool] }));
  try {
    const response = await fetchRaw(`${served.url}/x`);
    assert.is(response.status, 200, 'requests reach the h2c target');
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.is((await fetchRaw(`${served.url}/x`)).status, 200);
    assert.ok(pool.targets()[0]!.healthy, 'an h2c target that answers every request was marked unhealthy by its health checks');
  } finally {
    pool.stop();
    await served.close();
    await up.close();
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// Hashing while a target is ejected and after it returns (regression coverage)

test("hash: while a target is ejected only its keys move; when it returns they come back to it, the others' never moved", async () => {
  // Issue 17: "consistent hashing keeps 100 % of a key on one target while it is healthy and moves only that
  // target's keys when it leaves". Envoy ring hash / maglev: an ejected host's keys go elsewhere, others stay.
  const state = { bDown: false };
  const a = await named('a');
  const c = await named('c');
  const b = await startUpstream((_req, res) => {
    res.statusCode = state.bDown ? 502 : 200;
    res.setHeader('x-upstream', 'b');
    res.end('b');
  });
  const pool = balance({ targets: [a.url, b.url, c.url], strategy: 'hash', hashKey: { header: 'x-user' }, outlier: { consecutiveFailures: 1, baseEjectionTime: 1500 } });
  const served = await serveRelay(createRelay({ targetBaseUrl: a.url, stages: [pool] }));
  const keys = Array.from({ length: 60 }, (_, i) => `user-${i}`);
  const owners = async (): Promise<string[]> => (await load(served.url, keys.length, 1, (i) => ({ 'x-user': keys[i]! }))).map((hit) => hit.upstream);
  try {
    const before = await owners();
    const bKey = keys[before.indexOf('b')]!;
    assert.ok(bKey !== undefined, 'some key hashes to b');
    state.bDown = true;
    await load(served.url, 1, 1, () => ({ 'x-user': bKey })); // b fails once: ejected
    assert.ok(pool.targets()[1]!.ejectedUntil > 0);
    state.bDown = false;
    const during = await owners();
    before.forEach((owner, i) => {
      if (owner === 'b') assert.ok(during[i] === 'a' || during[i] === 'c', `${keys[i]} went to ${during[i]} while b was out`);
      else assert.is(during[i], owner, `${keys[i]} moved from ${owner} to ${during[i]} although its target stayed`);
    });
    assert.ok(await waitFor(() => pool.targets()[1]!.ejectedUntil === 0, 4000));
    assert.equal(await owners(), before, 'after b returned, every key is back on its first target');
  } finally {
    pool.stop();
    await served.close();
    await a.close();
    await b.close();
    await c.close();
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// pool.stop() (regression coverage)

test("pool.stop() stops the checks and closes the health checks' kept-alive connections to every target", async () => {
  // README: "pool.stop() stops them and closes their connections"; a stopped pool must not hold sockets open.
  const checks: number[] = [0, 0];
  const ups: Upstream[] = [];
  for (const index of [0, 1]) {
    ups.push(
      await startUpstream((req, res) => {
        if (req.url === '/health') checks[index]!++;
        res.end('ok');
      }),
    );
  }
  const sockets = new Set<Socket>();
  for (const up of ups) up.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const pool = balance({ targets: ups.map((up) => up.url), healthCheck: { path: '/health', interval: 50, timeout: 1000 } });
  try {
    await pool.start();
    assert.ok(await waitFor(() => checks[0]! >= 2 && checks[1]! >= 2, 3000), 'checks run');
    assert.ok(sockets.size > 0, 'the checks keep connections alive');
    pool.stop();
    assert.ok(await waitFor(() => sockets.size === 0, 2000), `${sockets.size} health check connection(s) still open after stop()`);
    const seen = [...checks];
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(checks, seen, 'no check after stop()');
  } finally {
    pool.stop();
    for (const up of ups) await up.close();
  }
});

test.run();
