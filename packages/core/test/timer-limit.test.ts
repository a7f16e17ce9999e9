// Timeouts longer than node's timers reach (2^31−1 ms, about 24.8 days) fired after 1 ms: a relay given
// `timeout: 30 days` failed every request. They are refused when the relay is built, naming the option.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, rangeErrorMessage, serveRelay, startUpstream } from '@relay/testkit';
import { createRelay, http2Transport } from '../src/index.js';
import { undiciTransport } from '../src/transport/undici.js';

const thirtyDays = 30 * 24 * 3600 * 1000;
const limit = 2 ** 31 - 1;

test('a timeout past the timer limit is a RangeError naming the option, the limit and the value', () => {
  assert.is(
    rangeErrorMessage(() => createRelay({ targetBaseUrl: 'http://h', timeout: { read: thirtyDays } })),
    `timeout.read must be at most ${limit} ms (about 24.8 days, node's timer limit; 0 turns it off), got ${thirtyDays}`,
  );
  assert.match(rangeErrorMessage(() => createRelay({ targetBaseUrl: 'http://h', timeout: thirtyDays })), /^timeout must be at most 2147483647 ms/);
  assert.match(rangeErrorMessage(() => createRelay({ targetBaseUrl: 'http://h', shutdownTimeout: thirtyDays })), /^shutdownTimeout must be at most/);
});

test("the transports' own timers: http2Transport's pingInterval and undiciTransport's idleTimeout past the limit are refused", () => {
  assert.match(rangeErrorMessage(() => http2Transport({ pingInterval: thirtyDays })), /^pingInterval must be at most 2147483647 ms/);
  assert.match(rangeErrorMessage(() => undiciTransport({ idleTimeout: thirtyDays })), /^idleTimeout must be at most 2147483647 ms/);
});

test('timeouts at the limit serve requests as usual; shutdown({ timeout }) past it is refused and the relay keeps serving', async () => {
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'));
  const relay = createRelay({ targetBaseUrl: upstream.url, timeout: limit, shutdownTimeout: limit });
  const served = await serveRelay(relay);
  try {
    const answer = await fetchRaw(`${served.url}/a`);
    assert.is(answer.status, 200);
    assert.is(answer.body.toString(), 'ok');
    assert.match(rangeErrorMessage(() => relay.shutdown({ timeout: thirtyDays })), /^shutdown timeout must be at most/);
    assert.is(relay.state, 'running', 'a refused shutdown leaves the relay serving');
    assert.is((await fetchRaw(`${served.url}/b`)).status, 200);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
