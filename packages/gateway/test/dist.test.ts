// The package as installed: the bin with plain node (no TypeScript loader) runs dist/, and a `.ts`
// config is compiled with esbuild when Node cannot load TypeScript itself.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const plainEnv = { ...process.env, NODE_OPTIONS: '' };

test('the exports map resolves @relay/gateway and its cli to dist/', () => {
  assert.ok(existsSync(`${packageDir}dist/index.d.ts`), 'dist/index.d.ts exists (run `pnpm build`)');
  const script = "console.log(import.meta.resolve('@relay/gateway'), import.meta.resolve('@relay/gateway/cli'), typeof (await import('@relay/gateway')).defineConfig)";
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8', env: plainEnv }).trim();
  assert.match(output, /\/packages\/gateway\/dist\/index\.js .*\/packages\/gateway\/dist\/cli\.js function$/);
});

test('plain node: relay --version, and relay check on a .ts config (compiled with esbuild)', () => {
  const version = spawnSync(process.execPath, ['packages/gateway/bin/relay.mjs', '--version'], { cwd: root, encoding: 'utf8', env: plainEnv });
  assert.is(version.status, 0, version.stderr);
  assert.is(version.stdout, '0.1.0\n');
  const check = spawnSync(process.execPath, ['packages/gateway/bin/relay.mjs', 'check', 'docs/examples/gateway.config.ts'], { cwd: root, encoding: 'utf8', env: plainEnv });
  assert.is(check.status, 0, check.stderr);
  assert.is(check.stdout, 'docs/examples/gateway.config.ts: ok (1 route, 1 listener)\n');
});

test.run();
