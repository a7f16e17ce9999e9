// Hot reload by file watch as operators deploy configs: a config path that is a symlink to a file
// kept elsewhere (/etc/relay/gateway.yaml -> /srv/config/gateway.yaml, as stow, Ansible or a config
// repo checkout lay it out), that symlink pointed elsewhere, a Capistrano release swap
// (current -> releases/N), and a save that lands while the gateway is starting.
import { createServer, type Server, type Socket } from 'node:net';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, memoryLogger, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { loadConfig, serve, type RunningGateway } from '../src/index.js';
import { watchConfig } from '../src/watch.js';
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

const reloads = (logger: ReturnType<typeof memoryLogger>) => logger.lines.filter((line) => line.message === 'config reloaded').length;
const urlOf = (running: RunningGateway) => `http://127.0.0.1:${(running.servers[0]!.address() as { port: number }).port}`;

test('the config symlink pointed at a file in a third folder: that file is watched from then on, the old one no longer', async () => {
  for (const folder of ['link', 'one', 'two']) mkdirSync(join(files.dir, 'moved', folder), { recursive: true });
  const one = join(files.dir, 'moved', 'one', 'gateway.yaml');
  const two = join(files.dir, 'moved', 'two', 'gateway.yaml');
  writeFileSync(one, config(a));
  writeFileSync(two, config(b));
  const link = join(files.dir, 'moved', 'link', 'gateway.yaml');
  symlinkSync(one, link);
  const logger = memoryLogger();
  const running = await serve({ config: link, logger });
  try {
    assert.is((await fetchRaw(`${urlOf(running)}/`)).text, 'A');
    // Re-pointed as `ln -sfn` does: a new symlink renamed over the old one.
    symlinkSync(two, `${link}.tmp`);
    renameSync(`${link}.tmp`, link);
    assert.ok(await waitFor(() => reloads(logger) === 1, 5_000), 'no reload after the symlink was pointed elsewhere');
    assert.is((await fetchRaw(`${urlOf(running)}/`)).text, 'B');
    writeFileSync(two, config(a));
    assert.ok(await waitFor(() => reloads(logger) === 2, 5_000), 'saving the file the symlink points to now did not reload');
    assert.is((await fetchRaw(`${urlOf(running)}/`)).text, 'A');
    writeFileSync(one, config(b));
    await delay(800);
    assert.is(reloads(logger), 2, 'the file the symlink no longer points to reloaded the config');
  } finally {
    await running.stop();
  }
});

test('a Capistrano deploy (the current -> releases/N folder symlink swapped) reloads, and saving the new release file does too', async () => {
  const app = join(files.dir, 'app');
  mkdirSync(join(app, 'releases', '1'), { recursive: true });
  mkdirSync(join(app, 'releases', '2'));
  writeFileSync(join(app, 'releases', '1', 'gateway.yaml'), config(a));
  writeFileSync(join(app, 'releases', '2', 'gateway.yaml'), config(b));
  symlinkSync(join(app, 'releases', '1'), join(app, 'current'));
  const logger = memoryLogger();
  const running = await serve({ config: join(app, 'current', 'gateway.yaml'), logger });
  try {
    assert.is((await fetchRaw(`${urlOf(running)}/`)).text, 'A');
    symlinkSync(join(app, 'releases', '2'), join(app, 'current_tmp'));
    renameSync(join(app, 'current_tmp'), join(app, 'current'));
    assert.ok(await waitFor(() => reloads(logger) === 1, 5_000), 'no reload after current was swapped to the next release');
    assert.is((await fetchRaw(`${urlOf(running)}/`)).text, 'B');
    writeFileSync(join(app, 'releases', '2', 'gateway.yaml'), config(a));
    assert.ok(await waitFor(() => reloads(logger) === 2, 5_000), 'saving the file of the release now current did not reload');
    assert.is((await fetchRaw(`${urlOf(running)}/`)).text, 'A');
  } finally {
    await running.stop();
  }
});

test('watchConfig with `seen` (the file as it was read): a file that differs when the watcher starts calls onChange once; one that does not, never', async () => {
  const path = files.write('seen.yaml', config(a));
  let calls = 0;
  const changed = watchConfig(path, () => calls++, { seen: 'as read before a save' });
  try {
    assert.ok(await waitFor(() => calls === 1, 5_000), 'the save before the watcher started was not seen');
    await delay(500);
    assert.is(calls, 1);
  } finally {
    changed.close();
  }
  const loaded = await loadConfig(path);
  assert.type(loaded.identity, 'string');
  let unchangedCalls = 0;
  const unchanged = watchConfig(path, () => unchangedCalls++, { seen: loaded.identity });
  try {
    await delay(800);
    assert.is(unchangedCalls, 0, 'a file unchanged since it was read called onChange');
  } finally {
    unchanged.close();
  }
});

test.run();
