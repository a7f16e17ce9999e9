// Second round, "inFlight back to 0" on every transport: balance() holds an attempt's slot until its
// response body emits 'close' (holdUntilSent), and @relay/observe finishes its record (access line,
// relay_requests_total) on the same event. gotTransport hands on got's stream as the body, which
// emits 'end' but never 'close' once a response was read in full: the target's inFlight never comes
// back down (a circuit breaker then refuses or queues every request), and observe writes no line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { gotTransport } from '@relay/core/got';
import { observe } from '@relay/observe';
import { Registry } from 'prom-client';
import { retry } from '@relay/retry';
import { delay, fetchRaw, serveRelay } from '@relay/testkit';
import { balance } from '../src/index.js';
import { named } from './helpers.js';

test('gotTransport: a target\'s inFlight is back to 0 once its responses were sent, and the circuit does not fill up', async () => {
  const a = await named('a');
  const pool = balance({ targets: [a.url], circuit: { maxRequests: 2, maxPending: 0 } });
  const served = await serveRelay(createRelay({ targetBaseUrl: a.url, transport: gotTransport(), stages: [retry({ maxRetries: 1, deadline: 2000 }), pool] }));
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetchRaw(served.url)).status);
    await delay(200);
    assert.equal(statuses, [200, 200, 200, 200], 'the circuit refused sequential requests: their slots were never given back');
    assert.is(pool.targets()[0]!.inFlight, 0, 'inFlight stayed up after the responses were sent');
  } finally {
    await served.close();
    await a.close();
  }
});

test('gotTransport with observe(): every request answered 200 gets its access line and counts in relay_requests_total', async () => {
  const a = await named('a');
  const lines: Array<{ status: number; attempts: number }> = [];
  const registry = new Registry();
  const obs = observe({ accessLog: { stream: { write: (line: string) => lines.push(JSON.parse(line)) } }, metrics: { registry } });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: a.url, transport: gotTransport(), stages: [obs.request, retry({ maxRetries: 1, deadline: 2000 }), obs.attempt] }),
  );
  try {
    for (let i = 0; i < 2; i++) assert.is((await fetchRaw(served.url)).status, 200);
    await delay(200);
    assert.equal(lines.map((line) => `${line.status} ${line.attempts}`), ['200 1', '200 1'], 'no access line for a request answered through gotTransport');
    assert.match(await registry.metrics(), /relay_requests_total\{[^}]*status_class="2xx"[^}]*\} 2/);
  } finally {
    await served.close();
    await a.close();
  }
});

test.run();
