// Runs docs/examples/cluster.ts with two workers: both answer, the relay works in each, and
// SIGTERM to the primary stops everything with exit code 0.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream } from '@relay/testkit';

const root = new URL('../..', import.meta.url).pathname;

/** GET on a new connection, so each request may land on another worker. */
function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

test('two workers share the port; each relays; SIGTERM to the primary exits 0', async () => {
  const upstream = await startUpstream((req, res) => res.end(`upstream saw ${req.url}`));
  const primary = spawn(process.execPath, ['--conditions=source', '--import', './scripts/register.mjs', 'docs/examples/cluster.ts'], {
    cwd: root,
    env: { ...process.env, WORKERS: '2', PORT: '0', UPSTREAM_URL: upstream.url },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const killer = setTimeout(() => primary.kill('SIGKILL'), 30_000);
  try {
    let output = '';
    primary.stdout.setEncoding('utf8');
    const base = await new Promise<string>((resolve, reject) => {
      primary.stdout.on('data', (chunk: string) => {
        output += chunk;
        const match = /gateway on (http:\/\/127\.0\.0\.1:\d+) with 2 workers/.exec(output);
        if (match) resolve(match[1]!);
      });
      primary.once('exit', (code) => reject(new Error(`cluster exited early (${code}): ${output}`)));
    });

    const pids = new Set<string>();
    for (let i = 0; i < 20 && pids.size < 2; i++) pids.add((await get(`${base}/healthz`)).trim());
    assert.is(pids.size, 2, `both workers answered: ${[...pids].join(', ')}`);
    assert.is(await get(`${base}/api/items?x=1`), 'upstream saw /items?x=1');

    primary.kill('SIGTERM');
    const [code, signal] = await once(primary, 'exit');
    assert.equal([code, signal], [0, null]);
  } finally {
    clearTimeout(killer);
    await upstream.close();
  }
});

test.run();
