// `relay serve` as a child process: HTTP and WebSocket through a route, the built-in endpoints,
// routing by host and method, SIGTERM draining and exiting 0, a port in use exiting 1.
import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { close, fetchRaw, listen, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { configDir, runBin, startBin, type ServingBin } from './bin.js';

const files = configDir();
let api: Upstream;
let admin: Upstream;
let chatServer: ReturnType<typeof createServer>;
let chatUrl: string;
let gateway: ServingBin;

test.before(async () => {
  api = await startUpstream();
  admin = await startUpstream();
  chatServer = createServer();
  const wss = new WebSocketServer({ server: chatServer });
  wss.on('connection', (socket, req) => socket.on('message', (data) => socket.send(`echo ${req.url} ${String(data)}`)));
  chatUrl = await listen(chatServer);
  const config = files.write(
    'gateway.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0 }',
      'status: { path: /_relay/status }',
      'routes:',
      '  - name: api',
      '    match: { path: /api }',
      '    upstream: ${API_URL}',
      '    upstreamPrefix: /v1',
      '    headers: { extraRequest: { x-gateway: relay } }',
      '  - name: admin',
      '    match: { path: /api, host: admin.example.com, methods: [GET] }',
      '    upstream: ${ADMIN_URL}',
      '  - name: upload',
      '    match: { path: /upload, methods: [POST, PUT] }',
      '    upstream: ${API_URL}',
      '  - name: chat',
      '    match: { path: /chat }',
      '    upstream: ${CHAT_URL}',
      '',
    ].join('\n'),
  );
  gateway = await startBin(['serve', config], { env: { API_URL: api.url, ADMIN_URL: admin.url, CHAT_URL: chatUrl } });
});

test.after(async () => {
  await gateway?.stop('SIGKILL');
  await api.close();
  await admin.close();
  await close(chatServer);
  files.cleanup();
});

test('serve: logs where it listens as a JSON line', () => {
  const line = gateway.logs.find((entry) => entry.msg === 'listening')!;
  assert.is(line.level, 'info');
  assert.is(line.address, '127.0.0.1');
  assert.is(typeof line.port, 'number');
  assert.is(line.config, 'gateway.yaml');
});

test('HTTP: the prefix is stripped, upstreamPrefix joined, the headers stage applied', async () => {
  const response = await fetchRaw(`${gateway.url}/api/users?page=2`);
  assert.is(response.status, 200);
  const seen = JSON.parse(response.body.toString()) as { url: string; headers: Record<string, string> };
  assert.is(seen.url, '/v1/users?page=2');
  assert.is(seen.headers['x-gateway'], 'relay');
  assert.is(seen.headers['x-forwarded-prefix'], '/api');
});

test('routing: an exact host wins over any host; its methods are enforced with 405 and Allow', async () => {
  const before = admin.requests.length;
  const get = await fetchRaw(`${gateway.url}/api/users`, { headers: { host: 'admin.example.com' } });
  assert.is(get.status, 200);
  assert.is(admin.requests.length, before + 1);
  const post = await fetchRaw(`${gateway.url}/api/users`, { method: 'POST', headers: { host: 'admin.example.com' }, body: 'x' });
  // POST on admin.example.com falls through to the any-host api route.
  assert.is(post.status, 200);
  assert.is(admin.requests.length, before + 1);
});

test('routing: a path whose routes take other methods is 405 with Allow', async () => {
  const response = await fetchRaw(`${gateway.url}/upload/file`);
  assert.is(response.status, 405);
  assert.is(response.headers.allow, 'POST, PUT');
});

test('routing: no route is 404; a path only sharing letters with a prefix does not match', async () => {
  assert.is((await fetchRaw(`${gateway.url}/nothing`)).status, 404);
  assert.is((await fetchRaw(`${gateway.url}/apix`)).status, 404);
});

test('path safety: a request never leaves the upstream prefix', async () => {
  const before = api.requests.length;
  const response = await sendRaw(gateway.port, 'GET /api/../admin HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n');
  assert.match(response, /^HTTP\/1\.1 400 /);
  assert.is(api.requests.length, before);
});

test('/healthz answers ok; /metrics has the gateway counters', async () => {
  const health = await fetchRaw(`${gateway.url}/healthz`);
  assert.is(health.status, 200);
  assert.is(health.body.toString(), 'ok\n');
  const metrics = await fetchRaw(`${gateway.url}/metrics`);
  assert.is(metrics.status, 200);
  assert.match(metrics.body.toString(), /relay_gateway_requests_total\{route="api"\} [1-9]/);
  assert.match(metrics.body.toString(), /process_cpu_user_seconds_total/);
});

test('WebSocket: a session through the chat route, both ways', async () => {
  const socket = new WebSocket(`${gateway.url.replace('http:', 'ws:')}/chat/lobby`);
  const reply = await new Promise<string>((resolve, reject) => {
    socket.once('open', () => socket.send('hello'));
    socket.once('message', (data) => resolve(String(data)));
    socket.once('error', reject);
  });
  assert.is(reply, 'echo /lobby hello');
  const status = (await (await fetch(`${gateway.url}/_relay/status.json`)).json()) as { websocketSessions: number };
  assert.is(status.websocketSessions, 1);
  socket.close();
  await new Promise((resolve) => socket.once('close', resolve));
});

test('status JSON: routes, targets with health, requests per route', async () => {
  const status = (await (await fetch(`${gateway.url}/_relay/status.json`)).json()) as {
    routes: Array<{ name: string; requestsLastMinute: number; targets: Array<{ url: string; health: string }> }>;
  };
  const apiRoute = status.routes.find((route) => route.name === 'api')!;
  assert.ok(apiRoute.requestsLastMinute >= 2);
  assert.equal(apiRoute.targets, [{ ...apiRoute.targets[0]!, url: api.url, health: 'healthy' }]);
  assert.equal(
    status.routes.map((route) => route.name),
    ['api', 'admin', 'upload', 'chat'],
  );
});

test('SIGTERM: an in-flight request finishes, then the process exits 0', async () => {
  const slow = await startUpstream((_req, res) => setTimeout(() => res.end('late but whole'), 500));
  const config = files.write('slow.yaml', ['listen: [{ host: 127.0.0.1, port: 0 }]', 'routes:', `  - upstream: ${slow.url}`, ''].join('\n'));
  const own = await startBin(['serve', config]);
  try {
    const pending = fetchRaw(`${own.url}/slow`);
    while (slow.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const code = await own.stop('SIGTERM');
    const response = await pending;
    assert.is(response.status, 200);
    assert.is(response.body.toString(), 'late but whole');
    assert.is(code, 0);
    assert.ok(own.logs.some((line) => line.msg === 'stopped'));
  } finally {
    await own.stop('SIGKILL');
    await slow.close();
  }
});

test('a port in use: exit code 1 and a log line saying so', async () => {
  const config = files.write('busy.yaml', ['listen: [{ host: 127.0.0.1, port: 0 }]', 'routes:', `  - upstream: ${api.url}`, ''].join('\n'));
  const result = await runBin(['serve', config, '--port', String(gateway.port)]);
  assert.is(result.code, 1);
  assert.match(result.stdout, new RegExp(`cannot listen on 127.0.0.1:${gateway.port}: EADDRINUSE`));
});

test.run();
