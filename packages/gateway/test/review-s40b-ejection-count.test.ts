// Review s40b: a reload keeps each target's outlier state (docs/gateway.md: "an ejected one stays
// out for the rest of its ejection"; Pool.adopt carries `ejections`, the count that makes the n-th
// ejection last n base times, and which starts over only "once the target has stayed in for a whole
// maxEjectionTime"). A target whose ejection has already ended when the config reloads carries its
// count but not when it was last ejected (lastEjection stays 0 in the new pool), so its next
// failure resets the count to 1: a flapping target gets the short first ejection again after
// every reload, as Envoy's ejection multiplier would not (it survives cluster updates).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { serve } from '../src/index.js';
import { configDir } from './bin.js';

const files = configDir();
let good: Upstream;
let failing: Upstream;

test.before(async () => {
  good = await startUpstream((_req, res) => res.end('good'));
  failing = await startUpstream((_req, res) => res.writeHead(503).end('down'));
});

test.after(async () => {
  await good.close();
  await failing.close();
  files.cleanup();
});

const config = (extra: string[]) =>
  [
    'listen: [{ host: 127.0.0.1, port: 0 }]',
    'routes:',
    '  - name: api',
    '    match: { path: /api }',
    `    upstream: [${good.url}, ${failing.url}]`,
    '    balance: { outlier: { consecutiveFailures: 1, baseEjectionTime: 400, maxEjectionTime: 20000 } }',
    ...extra,
    '',
  ].join('\n');

test('the third ejection of a flapping target lasts three base times whether or not the config was reloaded after its second one ended', async () => {
  const path = files.write('gateway.yaml', config([]));
  const running = await serve({ config: path, logger: memoryLogger(), watch: false });
  const failingState = () => running.gateway.current.routes[0]!.pool!.targets().find((target) => target.url === failing.url)!;
  try {
    const base = `http://127.0.0.1:${(running.servers[0]!.address() as { port: number }).port}`;
    /** Sends requests until one reaches the failing target (which ejects it); the ejection's length. */
    const ejectOnce = async (): Promise<number> => {
      const seen = failing.requests.length;
      for (let i = 0; i < 6 && failing.requests.length === seen; i++) await fetchRaw(`${base}/api/x`);
      assert.ok(failing.requests.length > seen, 'the failing target was asked');
      const state = failingState();
      assert.ok(state.ejectedUntil > Date.now(), 'and ejected');
      return state.ejectedUntil - Date.now();
    };
    const back = async () => assert.ok(await waitFor(() => failingState().ejectedUntil === 0, 5_000), 'it returns');
    const first = await ejectOnce();
    assert.ok(first <= 400, `first ejection ${first} ms`);
    await back();
    const second = await ejectOnce();
    assert.ok(second > 400 && second <= 800, `second ejection ${second} ms (two base times)`);
    await back();
    assert.is(failingState().ejections, 2);
    files.write('gateway.yaml', config(['    retry: { maxRetries: 0 }']));
    assert.is(await running.reload(), true);
    assert.is(running.gateway.current.number, 2);
    assert.is(failingState().ejections, 2, 'the count is carried over');
    const third = await ejectOnce();
    assert.is(failingState().ejections, 3, 'the third ejection counts as the third');
    assert.ok(third > 800, `third ejection lasts ${third} ms (three base times: 1200)`);
  } finally {
    await running.stop();
  }
});

test.run();
