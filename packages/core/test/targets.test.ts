import { createServer } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, fetchRaw, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';
import { createRelay, http2Transport, httpTransport, parseTarget, type Stage, type Target } from '../src/index.js';

// Issue 17, core: the target is a per-attempt choice, each target with its own pool; unix: targets.

/** A stage that sends paths under /b to `other`. */
function toOther(other: Target): Stage {
  return {
    name: 'to-other',
    wrap: (next) =>
      function toOther(request) {
        return next(request.path.startsWith('/b') ? { ...request, target: other } : request);
      },
  };
}

for (const [name, transport] of [['http', httpTransport], ['got', gotTransport], ['undici', undiciTransport]] as const) {
  test(`${name}: a stage chooses the target per attempt; each target keeps its own keep-alive pool and gets its own Host`, async () => {
    const a = await startUpstream();
    const b = await startUpstream();
    let bConnections = 0;
    b.server.on('connection', () => bConnections++);
    const served = await serveRelay(createRelay({ targetBaseUrl: a.url, stages: [toOther(parseTarget(b.url))], transport: transport() }));
    for (const path of ['/a1', '/b1', '/b2', '/a2', '/b3']) assert.is((await fetchRaw(`${served.url}${path}`)).status, 200);
    assert.equal(a.requests.map((r) => r.url), ['/a1', '/a2']);
    assert.equal(b.requests.map((r) => r.url), ['/b1', '/b2', '/b3']);
    assert.is(b.requests[0]!.headers.host, `127.0.0.1:${b.port}`, 'the chosen target’s Host');
    assert.is(a.requests[0]!.headers.host, `127.0.0.1:${a.port}`);
    assert.is(bConnections, 1, 'one kept-alive connection served the three /b requests');
    await served.close();
    await a.close();
    await b.close();
  });

  test(`${name}: a failure on a chosen target is logged with that target, not the relay's`, async () => {
    const a = await startUpstream();
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const logger = memoryLogger();
    const served = await serveRelay(createRelay({ targetBaseUrl: a.url, stages: [toOther(parseTarget(dead))], transport: transport(), logger }));
    assert.is((await fetchRaw(`${served.url}/b`)).status, 502);
    const line = logger.lines.find((l) => l.message === 'upstream request failed');
    assert.is(line?.fields.url, `${dead}/b`);
    await served.close();
    await a.close();
  });

  test(`${name}: unix: targets, with and without a base path`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'relay-unix-'));
    const socketPath = join(dir, 'app.sock');
    const seen: Array<[string, string | undefined]> = [];
    const upstream = createServer((req, res) => {
      seen.push([req.url ?? '', req.headers.host]);
      res.end('over the socket');
    });
    await new Promise<void>((resolve) => upstream.listen(socketPath, resolve));
    for (const targetBaseUrl of [`unix:${socketPath}`, `unix:${socketPath}:/v1`]) {
      const served = await serveRelay(createRelay({ targetBaseUrl, transport: transport() }));
      const answer = await fetchRaw(`${served.url}/items?x=1`);
      assert.equal([answer.status, answer.text], [200, 'over the socket']);
      await served.close();
    }
    assert.equal(seen, [['/items?x=1', 'localhost'], ['/v1/items?x=1', 'localhost']]);
    assert.is(parseTarget(`unix:${socketPath}`).origin, `unix:${socketPath}`);
    assert.throws(() => parseTarget('unix:relative.sock'), /absolute socket path/);
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });
}

/** An h2c upstream (on a port, or on a unix socket) that answers with its name, the path and `:authority`. */
async function h2cUpstream(name: string, socketPath?: string) {
  const seen: Array<[string, string]> = [];
  let sessions = 0;
  const server = http2.createServer((req, res) => {
    seen.push([req.url, req.headers[':authority'] as string]);
    res.end(name);
  });
  server.on('session', () => sessions++);
  await new Promise<void>((resolve) => (socketPath === undefined ? server.listen(0, '127.0.0.1', resolve) : server.listen(socketPath, resolve)));
  const url = socketPath === undefined ? `http://127.0.0.1:${(server.address() as AddressInfo).port}` : `unix:${socketPath}`;
  return { url, seen, sessions: () => sessions, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

test('http2Transport: a stage chooses the target per attempt; each target keeps its own session and gets its own :authority', async () => {
  const a = await h2cUpstream('a');
  const b = await h2cUpstream('b');
  const served = await serveRelay(createRelay({ targetBaseUrl: a.url, stages: [toOther(parseTarget(b.url))], transport: http2Transport() }));
  const bodies: string[] = [];
  for (const path of ['/a1', '/b1', '/b2', '/a2', '/b3']) bodies.push((await fetchRaw(`${served.url}${path}`)).text);
  assert.equal(bodies, ['a', 'b', 'b', 'a', 'b']);
  assert.equal(b.seen, [['/b1', new URL(b.url).host], ['/b2', new URL(b.url).host], ['/b3', new URL(b.url).host]]);
  assert.equal(a.seen.map(([path, authority]) => [path, authority]), [['/a1', new URL(a.url).host], ['/a2', new URL(a.url).host]]);
  assert.equal([a.sessions(), b.sessions()], [1, 1], 'one session per target, reused');
  await served.close();
  await a.close();
  await b.close();
});

test('http2Transport: an h2c upstream on a unix: socket, as the relay target and as a chosen one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'relay-h2-unix-'));
  const onSocket = await h2cUpstream('unix', join(dir, 'h2.sock'));
  const tcp = await h2cUpstream('tcp');
  const served = await serveRelay(createRelay({ targetBaseUrl: onSocket.url, transport: http2Transport() }));
  assert.equal((await fetchRaw(`${served.url}/x`)).text, 'unix');
  await served.close();
  const chosen = await serveRelay(createRelay({ targetBaseUrl: tcp.url, stages: [toOther(parseTarget(onSocket.url))], transport: http2Transport() }));
  assert.equal([(await fetchRaw(`${chosen.url}/a`)).text, (await fetchRaw(`${chosen.url}/b`)).text], ['tcp', 'unix']);
  assert.equal(onSocket.seen.map(([path, authority]) => [path, authority]), [['/x', 'localhost'], ['/b', 'localhost']]);
  await chosen.close();
  await onSocket.close();
  await tcp.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
