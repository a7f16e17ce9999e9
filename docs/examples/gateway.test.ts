// docs/gateway.md: examples/gateway.yaml runs against the demo's embedded services through the real
// bin, the typed config module passes `relay check`, and the YAML shown on the page is the file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { fetchRaw } from '@relay/testkit';
import { startAuthService, startChatService, type Service } from '../../demo/services.js';
import { runBin, startBin, type ServingBin } from '../../packages/gateway/test/bin.js';
import typedConfig from './gateway.config.js';

const root = new URL('../..', import.meta.url).pathname;
const exampleFile = join(root, 'examples/gateway.yaml');
let auth: Service;
let chat: Service;
let gateway: ServingBin;

test.before(async () => {
  auth = await startAuthService();
  chat = await startChatService();
  gateway = await startBin(['serve', exampleFile], { env: { PORT: '0', AUTH_URL: auth.url, CHAT_URL: chat.url } });
});

test.after(async () => {
  await gateway?.stop('SIGKILL');
  await auth.close();
  await chat.close();
});

test('docs/gateway.md shows examples/gateway.yaml as it is', () => {
  const page = readFileSync(join(root, 'docs/gateway.md'), 'utf8');
  const block = /```yaml\n# The demo gateway[\s\S]*?```/.exec(page);
  assert.ok(block !== null, 'the page has the example block');
  assert.is(block[0].slice('```yaml\n'.length, -3), readFileSync(exampleFile, 'utf8'));
});

test('the README shows lines of examples/gateway.yaml as they are', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const block = /## Or a gateway from a config file[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme);
  assert.ok(block !== null, 'the README has the example block');
  assert.ok(readFileSync(exampleFile, 'utf8').includes(block[1]!), 'the block is a verbatim excerpt of examples/gateway.yaml');
});

test('relay check: the example and the typed module are valid (exit 0)', async () => {
  const yaml = await runBin(['check', 'examples/gateway.yaml']);
  assert.is(yaml.code, 0, yaml.stderr);
  assert.is(yaml.stdout, 'examples/gateway.yaml: ok (2 routes, 1 listener)\n');
  const module = await runBin(['check', 'docs/examples/gateway.config.ts']);
  assert.is(module.code, 0, module.stderr);
  assert.is(typedConfig.routes[0]!.upstreamPrefix, '/v2');
});

test('the auth route: cookies() drops Domain=auth.internal, retry() hides the flaky 503', async () => {
  const login = await fetchRaw(`${gateway.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'user=ada',
  });
  assert.is(login.status, 200);
  const cookie = String(login.headers['set-cookie']);
  assert.match(cookie, /^session=/);
  assert.not.match(cookie, /Domain=/i);
  const flaky = await fetchRaw(`${gateway.url}/auth/flaky`);
  assert.is(flaky.status, 200);
});

test('the chat route relays WebSocket rooms', async () => {
  const socket = new WebSocket(`${gateway.url.replace('http:', 'ws:')}/chat/lobby`);
  const first = await new Promise<string>((resolve, reject) => {
    socket.once('message', (data) => resolve(String(data)));
    socket.once('error', reject);
  });
  assert.is(first, 'welcome to #lobby (1 here)');
  socket.close();
  await new Promise((resolve) => socket.once('close', resolve));
});

test('the status page is on, with both routes', async () => {
  const page = await fetchRaw(`${gateway.url}/_relay/status`);
  assert.is(page.status, 200);
  assert.match(page.text, /<title>Relay gateway status<\/title>/);
  const status = JSON.parse((await fetchRaw(`${gateway.url}/_relay/status.json`)).text) as { routes: Array<{ name: string }> };
  assert.equal(
    status.routes.map((route) => route.name),
    ['auth', 'chat'],
  );
});

test.run();
