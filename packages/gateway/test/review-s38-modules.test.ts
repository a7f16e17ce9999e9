// Review s38k: module configs bundled with esbuild, attacked as a user. Each config here loads with
// plain Node (imported as is), so the bundle must load it too: CommonJS files (require, __dirname),
// packages beside a symlinked config's real file, a .cjs config edited, two gateways with one pid.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { loadConfig, serve } from '../src/index.js';
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

/** What Node itself makes of a module config, imported as is (the behaviour without esbuild). */
async function nodeImport(path: string): Promise<unknown> {
  return ((await import(pathToFileURL(path).href)) as { default: unknown }).default;
}

test('a module config importing a local CommonJS helper (require, __dirname) loads, as Node loads it unbundled', async () => {
  mkdirSync(join(files.dir, 'cjs-helper'));
  files.write('cjs-helper/upstreams.cjs', `const path = require('node:path');\nmodule.exports = { url: ${JSON.stringify(first.url)}, folder: path.basename(__dirname) };\n`);
  const path = files.write(
    'cjs-helper/gateway.config.mjs',
    "import upstreams from './upstreams.cjs';\nexport default { listen: [{ host: '127.0.0.1', port: 0 }], routes: [{ name: upstreams.folder, upstream: upstreams.url }] };\n",
  );
  assert.is((await nodeImport(path) as { routes: Array<{ name: string }> }).routes[0]!.name, 'cjs-helper', 'plain Node loads it');
  const logger = memoryLogger();
  const running = await serve({ config: path, logger, watch: false });
  try {
    const base = `http://127.0.0.1:${(running.servers[0]!.address() as { port: number }).port}`;
    assert.is((await fetchRaw(`${base}/`)).text, 'first');
    assert.is(running.gateway.config.routes[0]!.name, 'cjs-helper');
  } finally {
    await running.stop();
  }
});

test('a CommonJS .js config (package.json "type": "commonjs") using require loads, as it did before bundling', async () => {
  mkdirSync(join(files.dir, 'cjs-config'));
  files.write('cjs-config/package.json', '{ "type": "commonjs" }\n');
  const path = files.write(
    'cjs-config/gateway.config.js',
    `const { basename } = require('node:path');\nmodule.exports = { listen: [{ host: '127.0.0.1', port: 0 }], routes: [{ name: basename(__dirname), upstream: ${JSON.stringify(first.url)} }] };\n`,
  );
  assert.is((await nodeImport(path) as { routes: Array<{ name: string }> }).routes[0]!.name, 'cjs-config', 'plain Node loads it');
  const loaded = await loadConfig(path);
  assert.is(loaded.config.routes[0]!.name, 'cjs-config');
});

test('a symlinked module config resolves its packages from the real file\'s folder, as Node does (/etc/relay/gateway.config.mjs -> /opt/app/…)', async () => {
  const app = join(files.dir, 'app');
  mkdirSync(join(app, 'node_modules', 'upstream-list'), { recursive: true });
  writeFileSync(join(app, 'node_modules', 'upstream-list', 'package.json'), '{ "name": "upstream-list", "version": "1.0.0", "type": "module", "exports": "./index.js" }\n');
  writeFileSync(join(app, 'node_modules', 'upstream-list', 'index.js'), `export const url = ${JSON.stringify(first.url)};\n`);
  const real = join(app, 'gateway.config.mjs');
  writeFileSync(real, "import { url } from 'upstream-list';\nexport default { listen: [{ host: '127.0.0.1', port: 0 }], routes: [{ upstream: url }] };\n");
  mkdirSync(join(files.dir, 'etc'));
  const link = join(files.dir, 'etc', 'gateway.config.mjs');
  symlinkSync(real, link);
  assert.is((await nodeImport(link) as { routes: Array<{ upstream: string }> }).routes[0]!.upstream, first.url, 'plain Node loads it through the link');
  const loaded = await loadConfig(link);
  assert.is(loaded.config.routes[0]!.upstream, first.url);
});

test('a .cjs config (accepted as a module config) reloads an edit: the next load reads the file again', async () => {
  mkdirSync(join(files.dir, 'dot-cjs'));
  const config = (upstream: Upstream) => `module.exports = { listen: [{ host: '127.0.0.1', port: 0 }], routes: [{ upstream: ${JSON.stringify(upstream.url)} }] };\n`;
  const path = files.write('dot-cjs/gateway.config.cjs', config(first));
  const logger = memoryLogger();
  const running = await serve({ config: path, logger });
  try {
    const base = `http://127.0.0.1:${(running.servers[0]!.address() as { port: number }).port}`;
    assert.is((await fetchRaw(`${base}/`)).text, 'first');
    writeFileSync(path, config(second));
    assert.ok(await waitFor(() => logger.lines.some((line) => line.message === 'config reloaded' || line.message.startsWith('config reload refused')), 5_000), 'no reload');
    assert.is((await fetchRaw(`${base}/`)).text, 'second', 'the reload kept serving the first file\'s upstream');
  } finally {
    await running.stop();
  }
});

test('two gateways sharing a config folder with one pid (each pid 1 in its container) do not overwrite or remove each other\'s bundle', async () => {
  mkdirSync(join(files.dir, 'shared-mount'));
  const path = files.write('shared-mount/gateway.config.mjs', `export default { listen: [{ host: '127.0.0.1', port: 0 }], routes: [{ upstream: ${JSON.stringify(first.url)} }] };\n`);
  // The other gateway's bundle, written and not yet imported: its pid is 1, and it is its first load.
  const theirs = files.write('shared-mount/.gateway.config.mjs.1.1.mjs', 'export default "theirs";\n');
  const root = new URL('../../..', import.meta.url).pathname;
  const preload = files.write('pid-one.mjs', "Object.defineProperty(process, 'pid', { value: 1 });\n");
  const script = files.write(
    'load-once.mjs',
    `import { loadConfig } from ${JSON.stringify(pathToFileURL(join(root, 'packages/gateway/src/index.ts')).href)};\nconst loaded = await loadConfig(${JSON.stringify(path)});\nconsole.log(loaded.config.routes[0].upstream);\n`,
  );
  const output = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['--conditions=source', '--import', join(root, 'scripts/register.mjs'), '--import', preload, script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.is(output.code, 0, output.stderr);
  assert.is(output.stdout.trim(), first.url);
  let left: string | null = null;
  try {
    left = readFileSync(theirs, 'utf8');
  } catch {
    left = null;
  }
  assert.is(left, 'export default "theirs";\n', 'the other gateway\'s bundle was overwritten or removed: its import fails (seen: "Cannot find module", "expected a default export")');
});

test.run();
