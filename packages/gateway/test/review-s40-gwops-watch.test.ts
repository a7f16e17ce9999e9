// Hot reload by file watch as operators deploy configs, through the real bin: a config path that is a
// symlink to a file kept elsewhere (/etc/relay/gateway.yaml -> /srv/config/gateway.yaml, as stow,
// Ansible or a config repo checkout lay it out), and a save that lands while the gateway is starting.
import { createServer, type Server, type Socket } from 'node:net';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { configDir, startBin } from './bin.js';

const files = configDir();
let a: Upstream;
let b: Upstream;

test.before(async () => {
  a = await startUpstream((_req, res) => res.end('A'));
  b = await startUpstream((_req, res) => res.end('B'));
});

test.after(async () => {
  await a.close();
  await b.close();
  files.cleanup();
});

const config = (upstream: Upstream, extra: string[] = []) =>
  ['listen: [{ host: 127.0.0.1, port: 0 }]', ...extra, 'routes:', '  - name: svc', '    match: { path: / }', `    upstream: ${upstream.url}`, ''].join('\n');

test('a config path that is a symlink to a file in another folder: saving that file reloads (docs/gateway.md "Saving the file … loads it again")', async () => {
  mkdirSync(join(files.dir, 'etc'));
  mkdirSync(join(files.dir, 'srv'));
  const real = join(files.dir, 'srv', 'gateway.yaml');
  writeFileSync(real, config(a));
  const link = join(files.dir, 'etc', 'gateway.yaml');
  symlinkSync(real, link);
  const gateway = await startBin(['serve', link]);
  try {
    assert.is((await fetchRaw(`${gateway.url}/`)).text, 'A');
    // The operator edits the file the path resolves to (vim, an Ansible template, a git pull).
    writeFileSync(real, config(b));
    const reloaded = await waitFor(() => gateway.logs.some((line) => line.msg === 'config reloaded'), 5_000);
    assert.ok(reloaded, 'saving the file the config path points to did not reload it');
    assert.is((await fetchRaw(`${gateway.url}/`)).text, 'B');
  } finally {
    assert.is(await gateway.stop('SIGTERM'), 0);
  }
});

test('a save that lands while the gateway starts (after the file was read, before it listens) is not lost: the saved config serves', async () => {
  // A Redis that accepts and never answers: starting waits its 2 s for `ready`, after the file was read.
  const sockets = new Set<Socket>();
  let connected = false;
  const silent: Server = createServer((socket) => {
    connected = true;
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const redisPort = (silent.address() as { port: number }).port;
  const redis = [`redis: { url: "redis://127.0.0.1:${redisPort}", timeout: 100 }`];
  const path = files.write('starting.yaml', config(a, redis));
  const started = startBin(['serve', path]);
  try {
    // The client connects once the config is loaded: the file has been read.
    assert.ok(await waitFor(() => connected, 60_000), 'the gateway never connected to the Redis of its config');
    writeFileSync(path, config(b, redis));
    const gateway = await started;
    try {
      await delay(1_500);
      assert.is((await fetchRaw(`${gateway.url}/`)).text, 'B', 'the config saved during startup never took effect (no reload, the old file serves)');
    } finally {
      assert.is(await gateway.stop('SIGTERM'), 0);
    }
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test.run();
