// Signals as operators use them, through the real bin: the first SIGTERM/SIGINT drains; a second one
// (Ctrl-C twice, `docker stop` after a `kill`, a supervisor escalating) ends the process at once
// instead of waiting out `timeouts.shutdown` (Caddy: "a second interrupt signal exits immediately").
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, startUpstream, type Upstream } from '@relay/testkit';
import { configDir, startBin } from './bin.js';

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

for (const [first, second] of [['SIGINT', 'SIGINT'], ['SIGTERM', 'SIGTERM']] as const) {
  test(`a second ${second} while draining a request in flight ends the process at once, with an exit code (not after timeouts.shutdown)`, async () => {
    const path = files.write(`${first}.yaml`, config());
    const gateway = await startBin(['serve', path]);
    const inFlight = fetchRaw(`${gateway.url}/`).catch((error: Error) => error);
    try {
      await delay(500);
      gateway.child.kill(first);
      await gateway.waitForLog((line) => line.msg === 'stopping: draining in-flight requests', 10_000);
      gateway.child.kill(second);
      const exited = await Promise.race([
        new Promise<{ code: number | null; signal: string | null }>((resolve) => gateway.child.once('exit', (code, signal) => resolve({ code, signal }))),
        delay(5_000).then(() => null),
      ]);
      assert.ok(exited !== null, `still draining 5 s after the second ${second} (timeouts.shutdown is 60 s)`);
      assert.is(exited.signal, null, 'the process should exit with a code, not die of the signal');
      assert.type(exited.code, 'number');
    } finally {
      await gateway.stop('SIGKILL');
      await inFlight;
    }
  });
}

test.run();
