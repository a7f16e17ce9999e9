// Signals as operators use them, through the real bin: the first SIGTERM/SIGINT drains; a second one
// (Ctrl-C twice, `docker stop` after a `kill`, a supervisor escalating) cuts every connection and
// exits 1 at once instead of waiting out `timeouts.shutdown` (Caddy: "a second interrupt signal
// exits immediately"), in one process and under --workers (the primary forwards it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, startUpstream, type Upstream } from '@relay/testkit';
import { configDir, startBin, type ServingBin } from './bin.js';

const files = configDir();
let hanging: Upstream;

test.before(async () => {
  // Answers nothing for a minute: the request stays in flight for the whole drain.
  hanging = await startUpstream((_req, res) => void setTimeout(() => res.end('late'), 60_000).unref());
});

test.after(async () => {
  hanging.server.closeAllConnections();
  await hanging.close();
  files.cleanup();
});

const config = () => ['listen: [{ host: 127.0.0.1, port: 0 }]', 'timeouts: { shutdown: 60000 }', 'routes:', `  - upstream: ${hanging.url}`, ''].join('\n');

function exited(gateway: ServingBin, withinMs: number): Promise<{ code: number | null; signal: string | null } | null> {
  if (gateway.child.exitCode !== null || gateway.child.signalCode !== null) return Promise.resolve({ code: gateway.child.exitCode, signal: gateway.child.signalCode });
  return Promise.race([
    new Promise<{ code: number | null; signal: string | null }>((resolve) => gateway.child.once('exit', (code, signal) => resolve({ code, signal }))),
    delay(withinMs).then(() => null),
  ]);
}

for (const [first, second] of [['SIGINT', 'SIGINT'], ['SIGTERM', 'SIGTERM'], ['SIGTERM', 'SIGINT']] as const) {
  test(`${first} then ${second} while draining a request in flight: the connection is cut and the process exits 1 at once (not after timeouts.shutdown)`, async () => {
    const path = files.write(`${first}-${second}.yaml`, config());
    const gateway = await startBin(['serve', path]);
    const inFlight = fetchRaw(`${gateway.url}/`).catch((error: Error) => error);
    try {
      await delay(500);
      gateway.child.kill(first);
      await gateway.waitForLog((line) => line.msg === 'stopping: draining in-flight requests', 10_000);
      await delay(200);
      assert.is(gateway.child.exitCode, null, 'the first signal drains: the request in flight keeps the process');
      gateway.child.kill(second);
      const exit = await exited(gateway, 5_000);
      assert.ok(exit !== null, `still draining 5 s after the second ${second} (timeouts.shutdown is 60 s)`);
      assert.is(exit.signal, null, 'the process should exit with a code, not die of the signal');
      assert.is(exit.code, 1);
      const cut = gateway.logs.find((line) => line.msg === 'exiting now: connections cut');
      assert.ok(cut !== undefined, 'no warn line for the cut');
      assert.is(cut.level, 'warn');
      assert.is(cut.reason, `second ${second}`);
      assert.is(cut.connections, 1);
      assert.ok((await inFlight) instanceof Error, 'the client of the request in flight should see its connection cut');
    } finally {
      await gateway.stop('SIGKILL');
      await inFlight;
    }
  });
}

test('--workers 2: a second SIGTERM to the primary makes the draining workers exit at once too; the primary exits 1', async () => {
  const path = files.write('workers.yaml', config());
  const gateway = await startBin(['serve', path, '--workers', '2'], { listeningCount: 2 });
  const inFlight = fetchRaw(`${gateway.url}/`).catch((error: Error) => error);
  try {
    await delay(1_000);
    gateway.child.kill('SIGTERM');
    await gateway.waitForLog((line) => line.msg === 'stopping: draining in-flight requests' && line.inFlight === 1, 20_000);
    gateway.child.kill('SIGTERM');
    const exit = await exited(gateway, 10_000);
    assert.ok(exit !== null, 'still draining 10 s after the second SIGTERM (timeouts.shutdown is 60 s)');
    assert.is(exit.code, 1);
    assert.ok(gateway.logs.some((line) => line.msg === 'exiting now: workers told to cut their connections'), 'the primary did not forward the second signal');
    const cut = gateway.logs.filter((line) => line.msg === 'exiting now: connections cut');
    assert.ok(cut.length >= 1, 'no worker cut its connections');
    assert.ok(cut.some((line) => line.connections === 1), 'the worker with the request in flight cut its connection');
    assert.ok((await inFlight) instanceof Error, 'the client of the request in flight should see its connection cut');
  } finally {
    await gateway.stop('SIGKILL');
    await inFlight;
  }
});

test.run();
