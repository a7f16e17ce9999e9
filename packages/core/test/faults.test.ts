import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, fetchRaw, memoryLogger, serveRelay, startFaultyUpstream, waitFor, type FaultyUpstream, type RelayServer } from '@relay/testkit';
import { createRelay, type Relay } from '../src/index.js';

let faulty: FaultyUpstream;
let served: RelayServer<Relay>;
const logger = memoryLogger();

test.before(async () => {
  faulty = await startFaultyUpstream();
  served = await serveRelay(createRelay({ targetBaseUrl: faulty.url, timeout: { read: 400, connect: 1000 }, logger }));
});

test.after(async () => {
  await served.close();
  await faulty.close();
});

/** After each fault the relay must answer a normal request and hold nothing in flight. */
async function stillServing(): Promise<void> {
  const next = await fetchRaw(`${served.url}/ok`);
  assert.is(next.status, 200, 'the relay keeps serving');
  assert.is(next.text, 'ok');
  assert.ok(await waitFor(() => served.relay.inFlight === 0), 'nothing left in flight');
}

const expectations: Array<[string, number | 'aborted', string]> = [
  ['/hang', 504, 'ERR_READ_TIMEOUT'],
  ['/reset-before-head', 502, 'ERR_UPSTREAM_RESET'],
  ['/bad-status-line', 502, 'ERR_UPSTREAM_PROTOCOL'],
  ['/conflicting-content-length', 502, 'ERR_UPSTREAM_PROTOCOL'],
  ['/oversized-headers', 502, 'ERR_UPSTREAM_PROTOCOL'],
  ['/head-then-stall', 'aborted', 'ERR_READ_TIMEOUT'],
  ['/reset-mid-body', 'aborted', 'ERR_UPSTREAM_RESET'],
  ['/close-mid-body', 'aborted', ''],
];

for (const [path, expected, code] of expectations) {
  test(`fault ${path}: the client gets ${expected === 'aborted' ? 'an aborted response' : expected}, the relay keeps serving`, async () => {
    const openBefore = faulty.open;
    const response = await fetchRaw(`${served.url}${path}`);
    if (expected === 'aborted') {
      assert.is(response.status, 200);
      assert.is(response.complete, false, 'the body must not look complete');
    } else {
      assert.is(response.status, expected);
      assert.ok(response.text.includes(code), response.text);
      assert.not.ok(response.text.includes('127.0.0.1'));
    }
    if (code !== '') assert.ok(await waitFor(() => logger.lines.some((l) => l.fields.code === code)), `logged ${code}`);
    await stillServing();
    assert.ok(await waitFor(() => faulty.open <= Math.max(openBefore, 1)), `the faulty connection was closed (${faulty.open} open)`);
  });
}

test('fault: connection refused gives 502 and the relay keeps serving', async () => {
  const port = await closedPort();
  const refused = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}` }));
  const response = await fetchRaw(`${refused.url}/x`);
  assert.is(response.status, 502);
  assert.ok(response.text.includes('ERR_UPSTREAM_UNREACHABLE'));
  assert.is((await fetchRaw(`${refused.url}/y`)).status, 502);
  await refused.close();
});

test('fault: a keep-alive socket closed as it is reused: an idempotent request is sent again on a new connection', async () => {
  const first = await fetchRaw(`${served.url}/close-on-reuse/1`);
  assert.is(first.text, 'ok');
  const acceptedBefore = faulty.accepted;
  const second = await fetchRaw(`${served.url}/close-on-reuse/2`);
  assert.is(second.status, 200, 'the stale socket was replaced, not reported');
  assert.is(second.text, 'ok');
  assert.is(faulty.accepted, acceptedBefore + 1, 'one new connection');
  await stillServing();
});

test('fault: a POST with a body on a socket closed as it is reused is not re-sent: 502', async () => {
  await fetchRaw(`${served.url}/close-on-reuse/a`);
  const requestsBefore = faulty.requests.length;
  const response = await fetchRaw(`${served.url}/close-on-reuse/b`, { method: 'POST', body: 'payload' });
  assert.is(response.status, 502);
  assert.is(faulty.requests.length, requestsBefore + 1, 'sent once, never twice');
  await stillServing();
});

test.run();
