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
  // Matched against the path from the repository root: a checkout's own folder name (a worktree named
  // after a package) must not match every file.
  .filter((file) => filters.length === 0 || filters.some((f) => relative(root, file).includes(f)))
  .sort();

const concurrency = stress ? 1 : Math.max(1, Math.min(2, availableParallelism()));
const perFileTimeoutMs = stress ? 600_000 : 180_000;
const lingerMs = 10_000;
const failures = [];
const counts = { passed: 0, failed: 0 };
let next = 0;

// uvu prints "Total: N" and "Passed: N" per file; a file that died before its summary counts as one failure.
function countTests(output, ok) {
  const total = Number(/Total:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const passed = Number(/Passed:\s+(\d+)/.exec(output)?.[1] ?? 0);
  counts.passed += passed;
  counts.failed += total - passed;
  if (!ok && total === passed) counts.failed += 1;
}

function allPassed(output) {
  const total = /Total:\s+(\d+)/.exec(output)?.[1];
  const passed = /Passed:\s+(\d+)/.exec(output)?.[1];
  return total === undefined || total === passed;
}

function runFile(file) {
  return new Promise((resolvePromise) => {
    const started = Date.now();
    const child = spawn(
      process.execPath,
      ['--conditions=source', '--import', join(root, 'scripts/register.mjs'), file],
      // Its own process group, so a process the file started and left behind is killed with it.
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' }, detached: true },
    );
    let output = '';
    let lingered = false;
    let exitTimer = null;
    const onOutput = (chunk) => {
      output += chunk;
      // uvu prints its summary once every test has run; a file that does not exit soon after
      // left a server, socket or timer open (often after a failed assertion skipped its cleanup).
      if (exitTimer === null && /Duration:\s+[\d.]+m?s/.test(output)) {
        exitTimer = setTimeout(() => {
          lingered = true;
          output += `\n[test runner] ${relative(root, file)} did not exit within ${lingerMs} ms of its last test: something was left open; killed\n`;
          killGroup(child);
        }, lingerMs);
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const timer = setTimeout(() => {
      output += `\n[test runner] ${relative(root, file)} still running after ${perFileTimeoutMs} ms: killed\n`;
      killGroup(child);
    }, perFileTimeoutMs);
    // A leftover grandchild keeps the pipes open and 'close' would never come: end the group soon after exit.
    child.on('exit', () => setTimeout(killGroup, 2_000, child).unref());
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (exitTimer !== null) clearTimeout(exitTimer);
      const name = relative(root, file);
      // A hook that throws can leave uvu's exit code 0 with failed tests in its summary.
      const ok = code === 0 && signal === null && !lingered && allPassed(output);
      process.stdout.write(`\n=== ${name} (${Date.now() - started} ms) ${ok ? 'ok' : 'FAILED'}\n${output}`);
      if (!ok) failures.push(name);
      countTests(output, ok);
      resolvePromise();
    });
  });
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group is already gone.
  }
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
if (failures.length > 0) console.log(`failed: ${failures.join(', ')}`);
// The last line is the summary CI reads.
console.log(`${counts.passed} passed, ${counts.failed} failed`);
if (failures.length > 0) process.exit(1);
