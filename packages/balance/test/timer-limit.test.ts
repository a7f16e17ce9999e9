// Node's timers wait at most 2^31−1 ms (about 24.8 days) and fire a longer one after 1 ms: a health
// check `interval` past it ran the checks back to back, a `timeout` past it failed every check at
// once, a DNS target's `interval` past it looked the name up without pause. balance() and
// setTargets() refuse them, naming the option.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, rangeErrorMessage, startUpstream } from '@relay/testkit';
import { balance } from '../src/index.js';

const limit = 2 ** 31 - 1;
const thirtyDays = 30 * 24 * 3600 * 1000;

/** Counts the TimeoutOverflowWarnings node emits while `run` runs (and a moment after: they come on the next tick). */
async function overflowWarnings(run: () => Promise<void>): Promise<number> {
  let count = 0;
  const listener = (warning: Error): void => {
    if (warning.name === 'TimeoutOverflowWarning') count++;
  };
  process.on('warning', listener);
  try {
    await run();
    await delay(10);
  } finally {
    process.off('warning', listener);
  }
  return count;
}

test('healthCheck.interval past the timer limit is a RangeError naming it; at the limit, one check runs and no other comes', async () => {
  assert.is(
    rangeErrorMessage(() => balance({ targets: [], healthCheck: { path: '/health', interval: limit + 1 } })),
    `healthCheck.interval must be at most ${limit} ms (about 24.8 days, node's timer limit), got ${limit + 1}`,
  );
  assert.match(rangeErrorMessage(() => balance({ targets: [], healthCheck: { path: '/health', interval: thirtyDays } })), /^healthCheck.interval must be at most 2147483647 ms/);
  const upstream = await startUpstream((_req, res) => res.end('ok'));
  const pool = balance({ targets: [upstream.url], healthCheck: { path: '/health', interval: limit } });
  try {
    const warnings = await overflowWarnings(async () => {
      await pool.start();
      await delay(200);
    });
    assert.is(warnings, 0);
    assert.is(upstream.requests.length, 1, 'the first check only: the next is 24.8 days away');
  } finally {
    pool.stop();
    await upstream.close();
  }
});

test('healthCheck.timeout past the timer limit is a RangeError naming it; at the limit, slow checks pass', async () => {
  assert.match(rangeErrorMessage(() => balance({ targets: [], healthCheck: { path: '/health', timeout: thirtyDays } })), /^healthCheck.timeout must be at most 2147483647 ms/);
  const slow = await startUpstream((_req, res) => void setTimeout(() => res.end('ok'), 30));
  const pool = balance({ targets: [slow.url], healthCheck: { path: '/health', interval: 20, timeout: limit, unhealthyThreshold: 1 } });
  try {
    const warnings = await overflowWarnings(async () => {
      await pool.start();
      await delay(250);
    });
    assert.is(warnings, 0);
    assert.ok(slow.requests.length >= 3, `${slow.requests.length} checks`);
    assert.is(pool.targets()[0]!.healthy, true);
  } finally {
    pool.stop();
    await slow.close();
  }
});

test("a DNS target's interval past the timer limit is refused by balance() and setTargets(); at the limit, the name is looked up once", async () => {
  const lookups: string[] = [];
  const resolve = async (name: string): Promise<string[]> => {
    lookups.push(name);
    return ['127.0.0.1'];
  };
  assert.match(
    rangeErrorMessage(() => balance({ targets: [{ dns: 'http://app.internal:8000', interval: thirtyDays }], resolve })),
    /^balance: targets\[0\]\.interval must be at most 2147483647 ms \(about 24\.8 days, node's timer limit\), got 2592000000$/,
  );
  const pool = balance({ targets: [], resolve });
  assert.match(rangeErrorMessage(() => pool.setTargets([{ dns: 'http://app.internal:8000', interval: limit + 1 }])), /^balance: targets\[0\]\.interval must be at most/);
  pool.setTargets([{ dns: 'http://app.internal:8000', interval: limit }]);
  try {
    const warnings = await overflowWarnings(async () => {
      await pool.start();
      await delay(100);
    });
    assert.is(warnings, 0);
    assert.equal(lookups, ['app.internal']);
    assert.equal(pool.targets().map((target) => target.url), ['http://127.0.0.1:8000']);
  } finally {
    pool.stop();
  }
});

test.run();
