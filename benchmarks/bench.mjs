// `pnpm bench`: builds what is stale (the @relay packages' dist/, which the proxies load with plain
// node, and this harness's TypeScript, with esbuild, into benchmarks/dist/), then runs the harness.
// Usage and options: benchmarks/README.md, or `pnpm bench --help`.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..');

/** Newest modification time of the files under `dir` (0 when it does not exist). */
function newest(dir) {
  if (!existsSync(dir)) return 0;
  let latest = 0;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const stat = statSync(path);
    latest = Math.max(latest, stat.isDirectory() ? newest(path) : stat.mtimeMs);
  }
  return latest;
}

// Relay runs from its built dist/: rebuild a package whose src/ changed since its last build
// (`--no-build` skips that: the smoke test runs right after `pnpm build`).
const args = process.argv.slice(2);
const noBuild = args.includes('--no-build');
const stale = noBuild ? [] : readdirSync(join(root, 'packages')).filter((name) => {
  const dir = join(root, 'packages', name);
  if (!existsSync(join(dir, 'tsconfig.build.json'))) return false;
  const dist = join(dir, 'dist', 'index.js');
  return !existsSync(dist) || newest(join(dir, 'src')) > statSync(dist).mtimeMs;
});
if (stale.length > 0) {
  console.log(`building ${stale.join(', ')} (src newer than dist)`);
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs'), ...stale], { stdio: 'inherit' });
}

const src = join(here, 'src');
await build({
  entryPoints: readdirSync(src).filter((file) => file.endsWith('.ts')).map((file) => join(src, file)),
  outdir: join(here, 'dist'),
  format: 'esm',
  platform: 'node',
  target: 'node20',
  bundle: false,
  sourcemap: true,
  logLevel: 'warning',
});

const { main } = await import('./dist/main.js');
try {
  await main(args.filter((arg) => arg !== '--no-build'));
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = error?.exitCode ?? 1;
}
