import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

test('the exports map resolves @relay/core to the built ESM in dist/, with declarations', () => {
  assert.ok(existsSync(`${packageDir}dist/index.d.ts`), 'dist/index.d.ts exists (run `pnpm build`)');
  const output = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', "const m = await import('@relay/core'); console.log(import.meta.resolve('@relay/core'), typeof m.createRelay, typeof m.httpTransport, typeof m.RelayError)"],
    { cwd: packageDir, encoding: 'utf8' },
  ).trim();
  assert.ok(output.endsWith('function function function'), output);
  assert.ok(output.includes('/packages/core/dist/index.js'), output);
});

test('@relay/core/got resolves to the built dist/transport/got.js, and the main entry never imports got', () => {
  assert.ok(existsSync(`${packageDir}dist/transport/got.d.ts`), 'dist/transport/got.d.ts exists');
  const output = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', "const m = await import('@relay/core/got'); console.log(import.meta.resolve('@relay/core/got'), typeof m.gotTransport)"],
    { cwd: packageDir, encoding: 'utf8' },
  ).trim();
  assert.ok(output.endsWith('/packages/core/dist/transport/got.js function'), output);
  // Walk the static import graph of dist/index.js: no module in it may import got.
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(`${packageDir}dist/${file}`, 'utf8');
    for (const match of source.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(?\s*['"]([^'"]+)['"]/g)) {
      const specifier = match[1] ?? match[2]!;
      assert.not.ok(specifier === 'got' || specifier.startsWith('got/'), `${file} imports ${specifier}`);
      if (specifier.startsWith('.')) visit(posix.join(posix.dirname(file), specifier));
    }
  };
  visit('index.js');
  assert.ok(seen.has('transport/http.js') && seen.has('transport/memory.js'), `walked: ${[...seen].join(', ')}`);
  assert.not.ok(seen.has('transport/got.js'), 'the main entry reaches transport/got.js');
});

test.run();
