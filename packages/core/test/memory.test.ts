import { fork, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, startUpstream } from '@relay/testkit';

const TOTAL = 200 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 120);
const MiB = 1024 * 1024;

function ask<T>(child: ChildProcess, message: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (reply) => resolve(reply as T));
    child.send(message);
  });
}

/** Writes `TOTAL` bytes to a writable, honouring backpressure. */
function writeAll(writable: NodeJS.WritableStream, done: () => void): void {
  let sent = 0;
  const pump = () => {
    while (sent < TOTAL) {
      sent += CHUNK.length;
      if (!writable.write(CHUNK)) {
        writable.once('drain', pump);
        return;
      }
    }
    writable.end();
    done();
  };
  pump();
}

test('200 MB streams through each way while the relay process RSS grows less than 64 MB', async () => {
  const upstream = await startUpstream(
    (req, res) => {
      if (req.method === 'POST') {
        let bytes = 0;
        req.on('data', (chunk: Buffer) => (bytes += chunk.length));
        req.on('end', () => res.end(String(bytes)));
      } else {
        res.writeHead(200, { 'content-length': TOTAL });
        writeAll(res, () => {});
      }
    },
    { streaming: true },
  );
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const child = fork(fileURLToPath(new URL('./fixtures/relay-process.ts', import.meta.url)), {
    env: { ...process.env, TARGET: upstream.url },
    execArgv: ['--conditions=source', '--import', `${root}scripts/register.mjs`],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { port } = await new Promise<{ port: number }>((resolve) => child.once('message', (m) => resolve(m as { port: number })));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 20; i++) await fetchRaw(`${base}/warm`, { method: 'POST', body: 'x' });
  const before = await ask<{ rss: number; maxRss: number }>(child, 'memory');

  const uploaded = await new Promise<string>((resolve, reject) => {
    const req = request(`${base}/upload`, { method: 'POST', agent: false, headers: { 'content-length': TOTAL } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    writeAll(req, () => {});
  });
  assert.is(Number(uploaded), TOTAL, 'the upstream got every byte');

  const downloaded = await new Promise<number>((resolve, reject) => {
    const req = request(`${base}/download`, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => resolve(bytes));
    });
    req.on('error', reject);
    req.end();
  });
  assert.is(downloaded, TOTAL, 'the client got every byte');

  const after = await ask<{ rss: number; maxRss: number }>(child, 'memory');
  const growth = Math.max(after.maxRss, after.rss) - before.rss;
  console.log(`relay RSS: ${(before.rss / MiB).toFixed(1)} MiB before, peak ${(after.maxRss / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`);
  assert.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB`);
  child.send('stop');
  await new Promise((resolve) => child.once('exit', resolve));
  await upstream.close();
});

test.run();
