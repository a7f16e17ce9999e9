import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

test('the exports map resolves @relay/balance to the built ESM in dist/, which runs against built core', () => {
  assert.ok(existsSync(`${packageDir}dist/index.d.ts`), 'dist/index.d.ts exists (run `pnpm build`)');
  const script =
    "const m = await import('@relay/balance'); const s = m.balance({ targets: ['http://127.0.0.1:1'] }); console.log(import.meta.resolve('@relay/balance'), s.name, s.targets().length, Object.keys(m).sort().join(','))";
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' }).trim();
  assert.ok(output.endsWith('balance 1 balance,targetPicker'), output);
  assert.ok(output.includes('/packages/balance/dist/index.js'), output);
});

test.run();
