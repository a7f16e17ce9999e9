import { createServer, type Server } from 'node:http';
import polka from 'polka';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay, type RelayOptions } from '@relay/core';
import { close, closedPort, fetchRaw, listen, memoryLogger, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { toConnect, type ConnectOptions } from '../src/index.js';
import { frameworks, type Framework, type RunningApp } from './apps.js';

// Errors before the response: by default the relay answers 502/504 itself; with
// `errors: 'next'` the app's error handler gets the RelayError.

let silent: Upstream;
let deadPort: number;
const relays: Relay[] = [];
const apps: RunningApp[] = [];
const servers: Server[] = [];

test.before(async () => {
  // An upstream that takes requests and never answers them: read timeouts.
  silent = await startUpstream(() => {});
  deadPort = await closedPort();
});

test.after(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await Promise.all(servers.map((server) => close(server)));
  await Promise.all(relays.map((relay) => relay.shutdown({ timeout: 0 })));
  await silent.close();
});

async function gateway(framework: Framework, relayOptions: Partial<RelayOptions>, options?: ConnectOptions): Promise<RunningApp> {
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${deadPort}`, ...relayOptions });
  await relay.startup();
  relays.push(relay);
  const app = await framework.start({ mounts: [['/auth', toConnect(relay, options)]] });
  apps.push(app);
  return app;
}

for (const framework of frameworks) {
  test(`${framework.name}: by default the relay answers 502 and 504 itself, with no internal address`, async () => {
    const unreachable = await gateway(framework, {});
    const slow = await gateway(framework, { targetBaseUrl: silent.url, timeout: { read: 300 } });
    const bad = await fetchRaw(`${unreachable.url}/auth/login`);
    assert.is(bad.status, 502);
    assert.is(bad.headers['x-handled-by'], undefined);
    assert.match(bad.text, /^502 Bad Gateway: .*\(ERR_UPSTREAM_UNREACHABLE\)\n$/);
    assert.not.match(bad.text, new RegExp(`127\\.0\\.0\\.1|${deadPort}`));
    const late = await fetchRaw(`${slow.url}/auth/login`);
    assert.is(late.status, 504);
    assert.match(late.text, /ERR_READ_TIMEOUT/);
  });

  test(`${framework.name}: errors: 'next' hands the RelayError to the app's error handler`, async () => {
    const unreachable = await gateway(framework, {}, { errors: 'next' });
    const slow = await gateway(framework, { targetBaseUrl: silent.url, timeout: { read: 300 } }, { errors: 'next' });
    const stopped = await gateway(framework, {}, { errors: 'next' });
    await relays.at(-1)!.shutdown();
    const bad = await fetchRaw(`${unreachable.url}/auth/login`);
    assert.is(bad.status, 502);
    assert.is(bad.headers['x-handled-by'], 'app');
    const error = JSON.parse(bad.text);
    assert.is(error.name, 'RelayError');
    assert.is(error.code, 'ERR_UPSTREAM_UNREACHABLE');
    assert.is(error.causeCode, 'ERR_UPSTREAM_UNREACHABLE', 'the original error is the cause');
    assert.not.match(error.message, new RegExp(`127\\.0\\.0\\.1|${deadPort}`), 'the message is safe to show');
    const late = await fetchRaw(`${slow.url}/auth/login`);
    assert.equal([late.status, late.headers['x-handled-by'], JSON.parse(late.text).code], [504, 'app', 'ERR_READ_TIMEOUT']);
    const early = await fetchRaw(`${stopped.url}/auth/login`);
    assert.equal([early.status, JSON.parse(early.text).code], [503, 'ERR_SHUTTING_DOWN']);
    const traversal = await sendRaw(unreachable.port, 'GET /auth/..%2fadmin HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    assert.match(traversal, /^HTTP\/1.1 400 /);
    assert.match(traversal, /x-handled-by: app/i);
    assert.match(traversal, /ERR_BAD_PATH/);
  });
}

test("errors: 'next' under Polka 0.5's default error handler (it reads err.code as the status): the relay answers, the process keeps serving", async () => {
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${deadPort}`, logger });
  await relay.startup();
  relays.push(relay);
  const app = polka();
  app.use('/auth', toConnect(relay, { errors: 'next' }));
  app.get('/health', (_req, res) => res.end('ok'));
  const server = createServer((req, res) => app.handler(req as never, res));
  servers.push(server);
  const url = await listen(server);
  const first = await fetchRaw(`${url}/auth/login`);
  assert.is(first.status, 502);
  assert.match(first.text, /ERR_UPSTREAM_UNREACHABLE/);
  assert.ok(logger.lines.some((line) => /error handler threw/.test(line.message)));
  assert.is((await fetchRaw(`${url}/auth/login`)).status, 502);
  assert.is((await fetchRaw(`${url}/health`)).text, 'ok');
});

test.run();
