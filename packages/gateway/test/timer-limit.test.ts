// Node's timers wait at most 2^31−1 ms (about 24.8 days) and fire a longer one after 1 ms. The config's
// timeouts feed timers (each relay's attempt and shutdown timers, the primary's kill deadline): past
// the limit they are a config error naming the key when the file is loaded, so `relay check` and the
// primary's reload check refuse them too. reloadDrain is only compared against the clock: any length.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/index.js';
import { killDelay, restartDelay } from '../src/cluster.js';
import { Generation, newSharedStats } from '../src/generation.js';
import { createLogger } from '../src/log.js';
import { configDir, rejection } from './bin.js';

const files = configDir();
test.after(() => files.cleanup());
const limit = 2 ** 31 - 1;
const thirtyDays = 30 * 24 * 3600 * 1000;

function config(timeouts: Record<string, number>, routeTimeout: Record<string, number>): string {
  return JSON.stringify({ listen: [{ port: 8080 }], timeouts, routes: [{ upstream: 'http://127.0.0.1:9000', timeout: routeTimeout }] });
}

test("attempt timeouts past the timer limit, global or a route's, are config errors naming each key at load; the limit loads and builds", async () => {
  const over = { connect: thirtyDays, read: limit + 1, write: thirtyDays, pool: thirtyDays };
  const path = files.write('over.json', config(over, { read: thirtyDays }));
  const error = await rejection(loadConfig(path));
  assert.equal(
    error.issues.map((issue) => issue.path),
    ['timeouts.connect', 'timeouts.read', 'timeouts.write', 'timeouts.pool', 'routes[0].timeout.read'],
  );
  assert.is(error.issues[1]!.message, `expected at most ${limit} ms (about 24.8 days, node's timer limit), got ${limit + 1}`);
  const atLimit = files.write('limit.json', config({ connect: limit, read: limit, write: limit, pool: limit }, { read: limit }));
  const loaded = await loadConfig(atLimit);
  const generation = new Generation({ number: 1, loaded, shared: newSharedStats(), logger: createLogger({ level: 'error' }) });
  assert.equal(generation.routes[0]!.relay.timeouts, { connect: limit, read: limit, write: limit, pool: limit });
});

test("timeouts.shutdown past the timer limit is a config error at load; at the limit it loads, and the primary's kill deadline stays within node's reach", async () => {
  const path = files.write('shutdown.yaml', ['listen: [{ port: 8080 }]', `timeouts: { shutdown: ${thirtyDays} }`, 'routes: [{ upstream: http://127.0.0.1:9000 }]', ''].join('\n'));
  const error = await rejection(loadConfig(path));
  assert.is(error.message, `${path}:2: timeouts.shutdown: expected at most ${limit} ms (about 24.8 days, node's timer limit), got ${thirtyDays}`);
  const atLimit = files.write('shutdown-limit.json', config({ shutdown: limit, reloadDrain: thirtyDays }, {}));
  assert.is((await loadConfig(atLimit)).config.timeouts.shutdown, limit);
  // The primary waits shutdown + 5 s before killing workers; at the limit, that would have been past it.
  assert.is(killDelay(limit), limit);
  assert.is(killDelay(10_000), 15_000);
});

test('a dead worker is restarted after 100 ms, then 200, 400 … at most 10 s (a timer well inside the limit)', () => {
  assert.equal([0, 1, 2, 3, 6, 7, 30].map(restartDelay), [100, 200, 400, 800, 6_400, 10_000, 10_000]);
});

test.run();
