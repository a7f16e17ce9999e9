import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

test('the exports map resolves @relay/ws to the built ESM in dist/, with declarations', () => {
  assert.ok(existsSync(`${packageDir}dist/index.d.ts`), 'dist/index.d.ts exists (run `pnpm build`)');
  const output = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', "const m = await import('@relay/ws'); console.log(import.meta.resolve('@relay/ws'), typeof m.websocket, m.websocket().name)"],
    { cwd: packageDir, encoding: 'utf8' },
  ).trim();
  assert.ok(output.endsWith('function websocket'), output);
  assert.ok(output.includes('/packages/ws/dist/index.js'), output);
});

test.run();
