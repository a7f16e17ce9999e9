import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

test('@relay/core/got resolves to the built dist/got-transport.js, and the main entry never imports got', () => {
  assert.ok(existsSync(`${packageDir}dist/got-transport.d.ts`), 'dist/got-transport.d.ts exists');
  const output = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', "const m = await import('@relay/core/got'); console.log(import.meta.resolve('@relay/core/got'), typeof m.gotTransport)"],
    { cwd: packageDir, encoding: 'utf8' },
  ).trim();
  assert.ok(output.endsWith('/packages/core/dist/got-transport.js function'), output);
  // Walk the static import graph of dist/index.js: no module in it may import got.
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(`${packageDir}dist/${file}`, 'utf8');
    for (const match of source.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(?\s*['"]([^'"]+)['"]/g)) {
      const specifier = match[1] ?? match[2]!;
      assert.not.ok(specifier === 'got' || specifier.startsWith('got/'), `${file} imports ${specifier}`);
      if (specifier.startsWith('./')) visit(specifier.slice(2));
    }
  };
  visit('index.js');
  assert.ok(seen.has('http-transport.js') && seen.has('memory-transport.js'), `walked: ${[...seen].join(', ')}`);
  assert.not.ok(seen.has('got-transport.js'), 'the main entry reaches got-transport.js');
});

test.run();
