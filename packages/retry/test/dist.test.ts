import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

test('the exports map resolves @relay/retry to the built ESM in dist/, which runs against built core and p-retry', () => {
  assert.ok(existsSync(`${packageDir}dist/index.d.ts`), 'dist/index.d.ts exists (run `pnpm build`)');
  const script =
    "const m = await import('@relay/retry'); const s = m.retry({ maxRetries: 1 }); console.log(import.meta.resolve('@relay/retry'), typeof m.retry, s.name, Object.keys(m).sort().join(','))";
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' }).trim();
  assert.ok(output.endsWith('function retry retry,retryPolicy,withRetry'), output);
  assert.ok(output.includes('/packages/retry/dist/index.js'), output);
});

test.run();
