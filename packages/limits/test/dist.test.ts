import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

test('the exports map resolves @relay/limits and @relay/limits/redis to the built ESM in dist/, which runs on plain node', () => {
  assert.ok(existsSync(`${packageDir}dist/index.d.ts`), 'dist/index.d.ts exists (run `pnpm build`)');
  assert.ok(existsSync(`${packageDir}dist/redis-store.d.ts`), 'dist/redis-store.d.ts exists');
  const script = [
    "const m = await import('@relay/limits');",
    "const r = await import('@relay/limits/redis');",
    "const l = m.createLimiter({ points: 2, duration: 1000 });",
    "const d = await l.consume('k');",
    "console.log(import.meta.resolve('@relay/limits'), import.meta.resolve('@relay/limits/redis'), m.rateLimit({ points: 1, duration: 1 }).name, typeof r.redisStore, d.allowed, d.remaining);",
  ].join(' ');
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: packageDir, encoding: 'utf8' }).trim();
  assert.ok(output.endsWith('rate-limit function true 1'), output);
  assert.ok(output.includes('/packages/limits/dist/index.js'), output);
  assert.ok(output.includes('/packages/limits/dist/redis-store.js'), output);
});

test.run();
