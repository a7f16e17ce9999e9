// Builds every package (or the ones named): esbuild compiles src/*.ts to ESM in dist/,
// tsc writes the declarations beside them. Usage: node scripts/build.mjs [package ...]
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const only = process.argv.slice(2);
const packages = readdirSync(join(root, 'packages')).filter(
  (name) => (only.length === 0 || only.includes(name)) && existsSync(join(root, 'packages', name, 'tsconfig.build.json')),
);

function sources(dir) {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sources(path);
    return entry.endsWith('.ts') && !entry.endsWith('.test.ts') ? [path] : [];
  });
}

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
for (const name of packages) {
  const dir = join(root, 'packages', name);
  rmSync(join(dir, 'dist'), { recursive: true, force: true });
  await build({
    entryPoints: sources(join(dir, 'src')),
    outdir: join(dir, 'dist'),
    outbase: join(dir, 'src'),
    format: 'esm',
    platform: 'node',
    target: 'node20',
    bundle: false,
    sourcemap: true,
    logLevel: 'warning',
  });
  execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.build.json')], { stdio: 'inherit' });
  console.log(`built @relay/${name}`);
}
