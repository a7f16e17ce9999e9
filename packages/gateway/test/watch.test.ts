// Reload on file change: a Kubernetes ConfigMap update (serve() in-process, with its fs.watch), and
// watchConfig on its own: other files changing in the folder do not reload; a module config reloads
// when a local file it imports changes (in another folder too).
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, memoryLogger, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { serve } from '../src/index.js';
import { watchConfig } from '../src/watch.js';
import { configDir } from './bin.js';

const files = configDir();
let first: Upstream;
let second: Upstream;

test.before(async () => {
  first = await startUpstream((_req, res) => res.end('first'));
  second = await startUpstream((_req, res) => res.end('second'));
});

test.after(async () => {
  await first.close();
  await second.close();
  files.cleanup();
});

const config = (upstream: Upstream) => ['listen: [{ host: 127.0.0.1, port: 0 }]', 'routes:', `  - upstream: ${upstream.url}`, ''].join('\n');

test('a Kubernetes ConfigMap update (the ..data symlink swapped to a new folder) reloads the file at the configured path', async () => {
  // The kubelet's atomic writer: gateway.yaml -> ..data/gateway.yaml, ..data -> ..<version>/,
  // updated by renaming a new ..data_tmp symlink over ..data: no event names gateway.yaml.
  const mount = join(files.dir, 'configmap');
  mkdirSync(join(mount, '..v1'), { recursive: true });
  writeFileSync(join(mount, '..v1', 'gateway.yaml'), config(first));
  symlinkSync('..v1', join(mount, '..data'));
  symlinkSync('..data/gateway.yaml', join(mount, 'gateway.yaml'));
  const logger = memoryLogger();
  const running = await serve({ config: join(mount, 'gateway.yaml'), logger });
  try {
    const base = `http://127.0.0.1:${(running.servers[0]!.address() as { port: number }).port}`;
    assert.is((await fetchRaw(`${base}/`)).text, 'first');
    mkdirSync(join(mount, '..v2'));
    writeFileSync(join(mount, '..v2', 'gateway.yaml'), config(second));
    symlinkSync('..v2', join(mount, '..data_tmp'));
    renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    assert.ok(await waitFor(() => logger.lines.some((line) => line.message === 'config reloaded'), 5_000), 'no reload after the ..data swap');
    assert.is((await fetchRaw(`${base}/`)).text, 'second');
  } finally {
    await running.stop();
  }
});

test('watchConfig: other files changing in the folder do not call onChange; the file itself does, once per burst', async () => {
  const folder = join(files.dir, 'watched');
  mkdirSync(folder);
  const path = join(folder, 'gateway.yaml');
  writeFileSync(path, config(first));
  let calls = 0;
  const watcher = watchConfig(path, () => calls++);
  try {
    writeFileSync(join(folder, 'notes.txt'), 'unrelated');
    writeFileSync(join(folder, 'other.yaml'), config(second));
    await delay(800);
    assert.is(calls, 0, 'an unrelated file reloaded the config');
    writeFileSync(path, config(second));
    writeFileSync(path, config(first));
    assert.ok(await waitFor(() => calls > 0, 5_000), 'a change to the file did not reload');
    await delay(500);
    assert.is(calls, 1);
  } finally {
    watcher.close();
  }
});

test('a module config reloads when a file it imports changes (here in a subfolder); the bundle written beside it does not reload it', async () => {
  const folder = join(files.dir, 'module');
  mkdirSync(join(folder, 'shared'), { recursive: true });
  const upstreams = join(folder, 'shared', 'upstreams.mjs');
  writeFileSync(upstreams, `export const url = ${JSON.stringify(first.url)};\n`);
  const path = join(folder, 'gateway.config.mjs');
  writeFileSync(path, "import { url } from './shared/upstreams.mjs';\nexport default { listen: [{ host: '127.0.0.1', port: 0 }], routes: [{ upstream: url }] };\n");
  const logger = memoryLogger();
  const running = await serve({ config: path, logger });
  try {
    const base = `http://127.0.0.1:${(running.servers[0]!.address() as { port: number }).port}`;
    assert.is((await fetchRaw(`${base}/`)).text, 'first');
    await delay(800);
    assert.not.ok(logger.lines.some((line) => line.message === 'config reloaded'), 'a reload without a change');
    writeFileSync(upstreams, `export const url = ${JSON.stringify(second.url)};\n`);
    assert.ok(await waitFor(() => logger.lines.some((line) => line.message === 'config reloaded'), 5_000), 'no reload after the imported file changed');
    assert.is((await fetchRaw(`${base}/`)).text, 'second');
    await delay(800);
    assert.is(logger.lines.filter((line) => line.message === 'config reloaded').length, 1, 'one reload for one change');
  } finally {
    await running.stop();
  }
});

test.run();
