// Issue 13, item 4: upstream faults that used to leave the client hanging with no log line and
// the request counted in flight. Each must end (502 before the head, a destroyed client
// connection after it), name its cause in a log line, and give back every fd.
import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, serveRelay, startFaultyUpstream, waitFor, type FaultyUpstream } from '@relay/testkit';
import { createRelay, type Transport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';

const openFds = () => readdirSync('/proc/self/fd').length;

/** The answer, or `'hang'` when none came within 5 s (the read timeout is 20 s: never the cause). */
function fetchOrHang(url: string) {
  return Promise.race([fetchRaw(url), new Promise<'hang'>((resolve) => setTimeout(resolve, 5_000, 'hang').unref())]);
}

type Expected = { status: 502; cause: RegExp } | { status: 200; truncated: boolean; cause: RegExp };

const faults: Array<[string, Expected]> = [
  ['/switching-protocols', { status: 502, cause: /101 Switching Protocols/ }],
  ['/bare-101', { status: 502, cause: /101 Switching Protocols/ }],
  ['/bad-chunk-with-head', { status: 502, cause: /chunk size/ }],
  ['/bad-chunk-later', { status: 200, truncated: true, cause: /chunk size/ }],
];

const transports: Array<[string, () => Transport | undefined]> = [
  ['http', () => undefined],
  ['got', () => gotTransport()],
  ['undici', () => undiciTransport()],
];

for (const [name, transport] of transports) {
  let faulty: FaultyUpstream;
  test(`${name} transport: setup`, async () => {
    faulty = await startFaultyUpstream();
  });

  const cases: Array<[string, Expected]> = [
    // undici hands on the head before it parses the chunk after it: the body is cut short, never complete.
    ...faults.map(([path, expected]): [string, Expected] => (name === 'undici' && path === '/bad-chunk-with-head' ? [path, { status: 200, truncated: true, cause: /chunk size/ }] : [path, expected])),
    // Every transport relays a whole response followed by garbage and closes the connection, as
    // nginx does: node:http keeps the response; got's stream fails on the garbage, so the got
    // transport relays the body node:http read for it; undici keeps it too. The relay logs the complaint.
    ['/trailing-garbage', { status: 200, truncated: false, cause: /after a complete response/ }],
  ];
  for (const [path, expected] of cases) {
    test(`${name} transport, upstream fault ${path}: ${expected.status === 502 ? '502' : 'answered'}, a log line names it, fds and inFlight back`, async () => {
      const logger = memoryLogger();
      const served = await serveRelay(createRelay({ targetBaseUrl: faulty.url, timeout: { read: 20_000 }, transport: transport(), logger }));
      await fetchRaw(`${served.url}/ok`);
      await waitFor(() => faulty.open <= 1);
      const fdsBefore = openFds();
      const response = await fetchOrHang(`${served.url}${path}`);
      assert.ok(response !== 'hang', 'the client got an answer or a closed connection');
      assert.is(response.status, expected.status);
      if (expected.status === 502) {
        assert.match(response.text, /ERR_UPSTREAM_PROTOCOL/);
      } else {
        assert.is(response.complete, !expected.truncated, expected.truncated ? 'the body must not look complete' : 'the whole response');
      }
      const named = () => logger.lines.some((line) => line.level === 'warn' && expected.cause.test(`${line.message} ${String(line.fields.error)}`));
      assert.ok(await waitFor(named), `a warn line names the cause: ${JSON.stringify(logger.lines)}`);
      assert.ok(await waitFor(() => served.relay.inFlight === 0), `inFlight back to 0 (${served.relay.inFlight})`);
      assert.ok(await waitFor(() => faulty.open <= 1), `the faulty upstream connection was closed (${faulty.open})`);
      assert.ok(await waitFor(() => openFds() <= fdsBefore), `fds back to ${fdsBefore} (${openFds()})`);
      const next = await fetchRaw(`${served.url}/ok`);
      assert.is(next.status, 200, 'the relay keeps serving');
      await served.close();
    });
  }

  test(`${name} transport: teardown`, async () => {
    await faulty.close();
  });
}

test.run();
