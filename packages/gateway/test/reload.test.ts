// Hot reload through the real bin: a changed route under load with zero failed requests, an
// in-flight request and an open WebSocket session finishing on the old relays, a broken config
// refused while the old one keeps serving, SIGHUP.
import { createServer } from 'node:http';
import { Agent, request } from 'node:http';
import { renameSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { close, listen, startUpstream, type Upstream } from '@relay/testkit';
import { configDir, startBin, type ServingBin } from './bin.js';

const files = configDir();
let a: Upstream;
let b: Upstream;
let echoServer: ReturnType<typeof createServer>;
let echoUrl: string;
let gateway: ServingBin;
let configPath: string;

function config(svc: string, extra: string[] = []): string {
  return [
    'listen: [{ host: 127.0.0.1, port: 0 }]',
    'status: { path: /_relay/status }',
    'routes:',
    '  - name: svc',
    '    match: { path: /svc }',
    `    upstream: ${svc}`,
    '  - name: ws',
    '    match: { path: /ws }',
    `    upstream: ${echoUrl}`,
    ...extra,
    '',
  ].join('\n');
}

/** Replaces the config as editors do: write a new file, rename it over the old one. */
function replaceConfig(text: string): void {
  const temporary = files.write('.gateway.yaml.tmp', text);
  renameSync(temporary, configPath);
}

function get(agent: Agent, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(`${gateway.url}${path}`, { agent }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: -1, body }));
    });
    req.on('error', (error) => resolve({ status: -1, body: error.message }));
    req.end();
  });
}

test.before(async () => {
  a = await startUpstream((req, res) => {
    if (req.url === '/slow') setTimeout(() => res.end('A slow'), 1_500);
    else res.end('A');
  });
  b = await startUpstream((_req, res) => res.end('B'));
  echoServer = createServer();
  new WebSocketServer({ server: echoServer }).on('connection', (socket) => socket.on('message', (data) => socket.send(`echo ${String(data)}`)));
  echoUrl = await listen(echoServer);
  configPath = files.write('gateway.yaml', config(a.url));
  gateway = await startBin(['serve', configPath, '--log-level', 'debug']);
});

test.after(async () => {
  await gateway?.stop('SIGKILL');
  await a.close();
  await b.close();
  await close(echoServer);
  files.cleanup();
});

test('reload under load: 500 requests at 20 concurrency, none fails; an in-flight request and a WebSocket session survive', async () => {
  const socket = new WebSocket(`${gateway.url.replace('http:', 'ws:')}/ws/room`);
  const messages: string[] = [];
  socket.on('message', (data) => messages.push(String(data)));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 20 });
  const slow = get(agent, '/svc/slow');
  while (a.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));

  const results: Array<{ status: number; body: string }> = [];
  let next = 0;
  let reloaded = false;
  // The load runs until the reload has landed (at least 500 requests): on a busy machine the watcher
  // can fire after 400 paced requests are over, and the test would see config A alone.
  let landed = false;
  const reloadLogged = gateway.waitForLog((line) => line.msg === 'config reloaded').then(() => (landed = true));
  const worker = async () => {
    while (next < 500 || (!landed && next < 5_000)) {
      next++;
      if (next === 100 && !reloaded) {
        reloaded = true;
        replaceConfig(config(b.url));
      }
      results.push(await get(agent, '/svc/item'));
      // Pace the load so the reload lands in the middle of it.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  await reloadLogged;

  const failed = results.filter((result) => result.status !== 200);
  assert.equal(failed, [], 'no request failed');
  assert.ok(results.length >= 500, `${results.length} requests`);
  const bodies = new Set(results.map((result) => result.body));
  assert.ok(bodies.has('A') && bodies.has('B'), `both configs answered: ${[...bodies].join(', ')}`);
  // Once the reload is logged, every new request goes to the new upstream (when the load ended relative to the
  // reload depends on the machine's speed, so the check is made after the log line, not on the load's tail).
  const after = await Promise.all(Array.from({ length: 50 }, () => get(agent, '/svc/item')));
  assert.ok(after.every((result) => result.status === 200 && result.body === 'B'), 'requests after the reload went to the new upstream');
  assert.equal(await slow, { status: 200, body: 'A slow' }, 'the in-flight request finished on the old relay');

  // The session opened before the reload still relays both ways, well after the old relays would have been polled.
  await new Promise((resolve) => setTimeout(resolve, 600));
  socket.send('still here');
  await new Promise<void>((resolve) => {
    const check = () => (messages.includes('echo still here') ? resolve() : setTimeout(check, 20));
    check();
  });
  assert.is(socket.readyState, WebSocket.OPEN);
  assert.not.ok(gateway.logs.some((line) => line.msg === 'old relays stopped'), 'old relays wait for the session');
  socket.close(1000);
  const stopped = await gateway.waitForLog((line) => line.msg === 'old relays stopped');
  assert.is(stopped.generation, 1);
  agent.destroy();
});

test('a broken config is refused and logged; the current one keeps serving', async () => {
  const before = gateway.logs.length;
  replaceConfig(config('ftp://nowhere'));
  const refused = await gateway.waitForLog((line) => line.msg === 'config reload refused: the previous config keeps serving');
  assert.is(refused.level, 'error');
  assert.is(refused.error, `${configPath}:6: routes[0].upstream: expected an absolute http:// or https:// URL, got "ftp://nowhere"`);
  assert.ok(gateway.logs.length > before);
  const agent = new Agent();
  assert.equal(await get(agent, '/svc/x'), { status: 200, body: 'B' });
  agent.destroy();
});

test('SIGHUP reloads: a new route appears', async () => {
  const reloads = gateway.logs.filter((line) => line.msg === 'config reloaded').length;
  // The watcher and SIGHUP may both fire: reloads run one at a time and both load the same file.
  replaceConfig(config(b.url, ['  - name: extra', '    match: { path: /extra }', `    upstream: ${a.url}`]));
  gateway.child.kill('SIGHUP');
  await gateway.waitForLog((line) => line.msg === 'config reloaded' && gateway.logs.filter((l) => l.msg === 'config reloaded').length > reloads);
  const agent = new Agent();
  assert.equal(await get(agent, '/extra/x'), { status: 200, body: 'A' });
  agent.destroy();
  const code = await gateway.stop('SIGTERM');
  assert.is(code, 0);
});

test.run();
