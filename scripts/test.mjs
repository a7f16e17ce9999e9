// Runs every `*.test.ts` file of the workspace in its own Node process (two at a time),
// so a leaked handle or a crash in one file cannot hide or break another.
// Usage: node scripts/test.mjs [--stress] [substring ...]
//   substrings: only files whose path contains one of them
//   --stress:   run the long `*.stress.ts` files instead (one at a time, so loads do not overlap)
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { availableParallelism } from 'node:os';

const root = new URL('..', import.meta.url).pathname;
const stress = process.argv.includes('--stress');
const filters = process.argv.slice(2).filter((arg) => arg !== '--stress');
const suffix = stress ? '.stress.ts' : '.test.ts';
const roots = ['packages', 'docs', 'benchmarks', 'demo', 'stress'].map((dir) => join(root, dir));

function collect(dir, found) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) collect(path, found);
    else if (entry.endsWith(suffix)) found.push(path);
  }
  return found;
}

const files = roots
  .flatMap((dir) => collect(dir, []))
  .filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)))
  .sort();

const concurrency = stress ? 1 : Math.max(1, Math.min(2, availableParallelism()));
const perFileTimeoutMs = stress ? 600_000 : 180_000;
const failures = [];
let next = 0;

function runFile(file) {
  return new Promise((resolvePromise) => {
    const started = Date.now();
    const child = spawn(
      process.execPath,
      ['--conditions=source', '--import', join(root, 'scripts/register.mjs'), file],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } },
    );
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n[test runner] ${relative(root, file)} still running after ${perFileTimeoutMs} ms: killed\n`;
      child.kill('SIGKILL');
    }, perFileTimeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const name = relative(root, file);
      const ok = code === 0 && signal === null;
      process.stdout.write(`\n=== ${name} (${Date.now() - started} ms) ${ok ? 'ok' : 'FAILED'}\n${output}`);
      if (!ok) failures.push(name);
      resolvePromise();
    });
  });
}

async function worker() {
  while (next < files.length) await runFile(files[next++]);
}

if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
await Promise.all(Array.from({ length: concurrency }, worker));
console.log(`\n${files.length - failures.length}/${files.length} test files passed`);
if (failures.length > 0) {
  console.log(`failed: ${failures.join(', ')}`);
  process.exit(1);
}
