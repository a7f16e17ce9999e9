// A module config in a folder that cannot be written (a Kubernetes ConfigMap mount): its bundle cannot
// be written beside it, so it is imported as is (as before bundling), with one warning per process.
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, startUpstream, type Upstream } from '@relay/testkit';
import { loadConfig, serve } from '../src/index.js';
import { configDir, rejection } from './bin.js';

const files = configDir();
let upstream: Upstream;

test.before(async () => {
  upstream = await startUpstream((_req, res) => res.end('upstream'));
});

test.after(async () => {
  await upstream.close();
  files.cleanup();
});

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    writeFileSync(join(dir, '.probe'), '', { flag: 'wx' });
  } catch {
    return false;
  }
  spawnSync('rm', ['-f', join(dir, '.probe')]);
  return true;
}

/**
 * Makes `dir` read-only and returns the undo, or `null` when this process cannot: chmod for a user,
 * `chattr +i` for root (whom modes do not stop; it needs CAP_LINUX_IMMUTABLE and a file system with the flag).
 */
function readOnly(dir: string): (() => void) | null {
  chmodSync(dir, 0o555);
  if (!writable(dir)) return () => chmodSync(dir, 0o755);
  chmodSync(dir, 0o755);
  if (spawnSync('chattr', ['+i', dir]).status === 0 && !writable(dir)) return () => void spawnSync('chattr', ['-i', dir]);
  spawnSync('chattr', ['-i', dir]);
  return null;
}

test('a .mjs config importing local files from a read-only folder is imported as is, with one warning; a .ts one is refused, saying why', async () => {
  const dir = join(files.dir, 'configmap');
  mkdirSync(dir);
  files.write('configmap/upstreams.mjs', `export const url = ${JSON.stringify(upstream.url)};\n`);
  const path = files.write('configmap/gateway.config.mjs', "import { url } from './upstreams.mjs';\nexport default { listen: [{ host: '127.0.0.1', port: 0 }], routes: [{ upstream: url }] };\n");
  const typed = files.write('configmap/gateway.config.ts', "export default { routes: [{ upstream: 'http://127.0.0.1:9' }] } as const;\n");
  const undo = readOnly(dir);
  if (undo === null) {
    // Neither chmod nor chattr made the folder read-only here: nothing can be checked.
    console.warn('module-readonly: cannot make a read-only folder in this environment; not checked');
    return;
  }
  try {
    const logger = memoryLogger();
    const running = await serve({ config: path, logger, watch: false });
    try {
      const base = `http://127.0.0.1:${(running.servers[0]!.address() as { port: number }).port}`;
      assert.is((await fetchRaw(`${base}/`)).text, 'upstream');
      await running.reload();
      assert.ok(logger.lines.some((line) => line.message === 'config reloaded'), 'the reload was not applied');
      const warnings = logger.lines.filter((line) => line.level === 'warn' && line.message.includes('cannot be written'));
      assert.is(warnings.length, 1, JSON.stringify(logger.lines));
    } finally {
      await running.stop();
    }
    const error = await rejection(loadConfig(typed));
    assert.match(error.message, /cannot write the bundled config beside it \((EACCES|EROFS|EPERM)\): a \.ts config needs a writable folder/);
  } finally {
    undo();
  }
});

test.run();
