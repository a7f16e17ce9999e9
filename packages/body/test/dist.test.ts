import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

test('the exports map resolves @relay/body to the built ESM in dist/, which runs against built core', () => {
  assert.ok(existsSync(`${packageDir}dist/index.d.ts`), 'dist/index.d.ts exists (run `pnpm build`)');
  const script =
    "const m = await import('@relay/body'); console.log(import.meta.resolve('@relay/body'), m.compress().name, m.bodyLimit().name, m.negotiateEncoding('gzip, br'))";
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' }).trim();
  assert.ok(output.endsWith('compress body-limit br'), output);
  assert.ok(output.includes('/packages/body/dist/index.js'), output);
});

test.run();
