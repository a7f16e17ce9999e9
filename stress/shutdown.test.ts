import { Agent, request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream, waitFor } from '@relay/testkit';
import { startGateway } from './harness.js';

function get(base: string, path: string, agent: Agent | false): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(`${base}${path}`, { agent }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: -1, body }));
    });
    req.on('error', (error) => resolve({ status: -1, body: error.message }));
    req.end();
  });
}

test('shutdown() with 200 requests in flight: every one finishes, new ones get 503, the process exits on its own', async () => {
  // The upstream holds every answer until the drain has begun: on a busy machine a timer could let
  // some finish before the relay is asked how many are in flight.
  let release = (): void => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const upstream = await startUpstream((_req, res) => void held.then(() => setTimeout(() => res.end('done'), 300)));
  const gateway = await startGateway(upstream.url, { SHUTDOWN_TIMEOUT: '10000' });
  const agent = new Agent({ keepAlive: false, maxSockets: 250 });
  try {
    const inFlight = Array.from({ length: 200 }, (_, i) => get(gateway.url, `/api/slow/${i}`, agent));
    assert.ok(
      await waitFor(() => upstream.requests.length === 200, 5_000),
      `all 200 reached the upstream (${upstream.requests.length})`,
    );
    const stats = await gateway.ask<{ inFlight: number }>('stats');
    assert.is(stats.inFlight, 200);

    const started = Date.now();
    const drained = new Promise<{ drainedAfter: number }>((resolve) => gateway.child.once('message', (m) => resolve(m as { drainedAfter: number })));
    gateway.child.send('shutdown');
    const late = await get(gateway.url, '/api/late', false);
    assert.is(late.status, 503, 'a new request during the drain is refused');
    assert.ok(late.body.includes('ERR_SHUTTING_DOWN'));
    release();

    const results = await Promise.all(inFlight);
    assert.equal(results.filter((r) => r.status !== 200 || r.body !== 'done'), [], 'every in-flight request finished');
    const { drainedAfter } = await drained;
    assert.ok(drainedAfter < 10_000, `drained within the deadline (${drainedAfter} ms)`);
    const code = await Promise.race([gateway.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 5_000).unref())]);
    assert.is(code, 0, 'the process exited on its own: no handle left open');
    assert.ok(Date.now() - started < 15_000);
    assert.is(upstream.requests.filter((r) => r.url.includes('late')).length, 0);
  } finally {
    release();
    gateway.child.kill('SIGKILL');
    agent.destroy();
    await upstream.close();
  }
});

test.run();
