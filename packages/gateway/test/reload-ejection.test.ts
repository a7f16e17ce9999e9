// A reload keeps a pool's targets: an ejected target stays out for what is left of its ejection, as
// Envoy keeps a host's ejection over a cluster update; its timer does not start again from zero. It
// also keeps each target's ejection count with the time of its last ejection (`lastEjectionAt`),
// for a target whose ejection has already ended too: the n-th ejection of a flapping target lasts n
// base times whether or not the config was reloaded in between (Envoy's multiplier survives cluster
// updates). Without that time the new pool started the count over, and the short first ejection
// came again after every reload.
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

const longEjection = 'baseEjectionTime: 3000, maxEjectionTime: 3000';

const config = (extra: string[], ejection = longEjection) =>
  [
    'listen: [{ host: 127.0.0.1, port: 0 }]',
    'routes:',
    '  - name: api',
    '    match: { path: /api }',
    `    upstream: [${good.url}, ${failing.url}]`,
    `    balance: { outlier: { consecutiveFailures: 1, ${ejection} } }`,
    ...extra,
    '',
  ].join('\n');

test('an ejection carried over a reload ends when it would have ended, not one ejection time after the reload', async () => {
  const path = files.write('gateway.yaml', config([]));
  const running = await serve({ config: path, logger: memoryLogger(), watch: false });
  const failingState = () => running.gateway.current.routes[0]!.pool!.targets().find((target) => target.url === failing.url)!;
  try {
    const base = `http://127.0.0.1:${(running.servers[0]!.address() as { port: number }).port}`;
    // Round robin: one of the first two requests reaches the failing target, whose 503 ejects it.
    for (let i = 0; i < 2; i++) await fetchRaw(`${base}/api/x`);
    const ejectedUntil = failingState().ejectedUntil;
    assert.ok(ejectedUntil > Date.now(), 'the failing target was ejected');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    files.write('gateway.yaml', config(['    retry: { maxRetries: 1 }']));
    assert.is(await running.reload(), true);
    assert.is(running.gateway.current.number, 2);
    assert.is(failingState().ejectedUntil, ejectedUntil, 'the new pool keeps the ejection\'s end time');
    const shown = running.gateway.status().routes[0]!.targets.find((target) => target.url === failing.url)!;
    assert.equal([shown.health, shown.ejected], ['unhealthy', true], 'still out after the reload');
    // Restarted from zero it would end 3 s after the reload, at least 4.5 s after the ejection.
    assert.ok(await waitFor(() => failingState().ejectedUntil === 0, 6_000), 'it returns');
    const late = Date.now() - ejectedUntil;
    assert.ok(late < 1_000, `it returned ${late} ms after its ejection's end`);
    const seen = failing.requests.length;
    for (let i = 0; i < 4; i++) await fetchRaw(`${base}/api/x`);
    assert.ok(failing.requests.length > seen, 'the returned target gets traffic again');
  } finally {
    await running.stop();
  }
});

const shortEjection = 'baseEjectionTime: 400, maxEjectionTime: 20000';

test('the third ejection of a flapping target lasts three base times whether or not the config was reloaded after its second one ended', async () => {
  const path = files.write('gateway.yaml', config([], shortEjection));
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
    files.write('gateway.yaml', config(['    retry: { maxRetries: 0 }'], shortEjection));
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
