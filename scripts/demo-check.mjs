// Checks the README's first command end to end: starts `pnpm demo` on a free port,
// requests through the gateway, stops it with SIGINT and expects a clean exit.
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const child = spawn(process.execPath, ['--conditions=source', '--import', './scripts/register.mjs', 'demo/gateway.ts'], {
  cwd: root,
  env: { ...process.env, PORT: '0' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const fail = (message) => {
  console.error(`demo check failed: ${message}`);
  child.kill('SIGKILL');
  process.exit(1);
};
const timer = setTimeout(() => fail('no answer within 30 s'), 30_000);

let output = '';
child.stdout.on('data', async (chunk) => {
  const before = output;
  output += chunk;
  const match = /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
  if (!match || /gateway on (http:\/\/127\.0\.0\.1:\d+)/.test(before)) return;
  const base = match[1];
  const hello = await fetch(`${base}/api/hello?name=ci`);
  const body = await hello.json();
  if (hello.status !== 200 || !String(body.message).includes('Hello, ci')) fail(`unexpected /api/hello: ${hello.status} ${JSON.stringify(body)}`);
  const traversal = await fetch(`${base}/api/..%2fsecret`);
  if (traversal.status !== 400) fail(`traversal got ${traversal.status}`);
  child.kill('SIGINT');
});
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  if (code !== 0) fail(`exit code ${code} signal ${signal}`);
  console.log('demo check passed: gateway answered, refused a traversal, and stopped cleanly on SIGINT');
});
