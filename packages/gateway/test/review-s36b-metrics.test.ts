// Review s36b (gateway, issue 19): what `/metrics` says after real traffic (HTTP/1.1, HTTP/2 on
// the TLS listener, a WebSocket session, a request in flight, reloads accepted and refused),
// checked series by series against docs/gateway.md ("Health, metrics, logs") and
// docs/observability.md (a route's `metrics: true`); and rate-limit keys behind `trustProxy`
// (X-Forwarded-For believed only from the listed proxies, its rightmost untrusted entry being the
// client, as nginx's realip module with `real_ip_recursive on`). In-process through `serve()`.
import { request as httpRequest, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { close, closedPort, fetchRaw, listen, memoryLogger, startUpstream, tlsFixture, waitFor, type Upstream } from '@relay/testkit';
import { serve, type RunningGateway } from '../src/index.js';
import { configDir } from './bin.js';

const files = configDir();
let api: Upstream;
let running: RunningGateway;
let plainPort = 0;
let tlsPort = 0;
let configText = '';
const chat = createServer();
const wss = new WebSocketServer({ server: chat });
wss.on('connection', (socket) => socket.on('message', (data) => socket.send(String(data))));
const held: Array<() => void> = [];

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '';
  if (url.includes('/fail')) return void res.writeHead(503).end('unavailable');
  if (url.includes('/hold')) return void held.push(() => res.end('held'));
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url, xff: req.headers['x-forwarded-for'] ?? null }));
}

test.before(async () => {
  api = await startUpstream(upstreamHandler);
  const chatUrl = await listen(chat);
  const dead = await closedPort();
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  configText = [
    'listen:',
    '  - { host: 127.0.0.1, port: 0 }',
    '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }',
    'trustProxy: [127.0.0.1]',
    'routes:',
    '  - name: users',
    '    match: { path: /users }',
    `    upstream: ${api.url}`,
    '    metrics: true',
    '  - name: down',
    '    match: { path: /down }',
    `    upstream: http://127.0.0.1:${dead}`,
    '  - name: chat',
    '    match: { path: /chat }',
    `    upstream: ${chatUrl}`,
    '  - name: limited',
    '    match: { path: /lim }',
    `    upstream: ${api.url}`,
    '    rateLimit: { points: 1, duration: 60000 }',
    '',
  ].join('\n');
  const config = files.write('gateway.yaml', configText);
  running = await serve({ config, logger: memoryLogger() as never, watch: false });
  plainPort = (running.servers[0]!.address() as { port: number }).port;
  tlsPort = (running.servers[1]!.address() as { port: number }).port;
});

test.after(async () => {
  for (const answer of held.splice(0)) answer();
  await running?.stop();
  for (const client of wss.clients) client.terminate();
  wss.close();
  await close(chat);
  await api.close();
  files.cleanup();
});

function h2Session(): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`https://localhost:${tlsPort}`, { ca: tlsFixture.cert });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

function h2Get(session: ClientHttp2Session, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let status = 0;
    let body = '';
    stream.on('response', (head) => (status = Number(head[':status'])));
    stream.on('data', (chunk: Buffer) => (body += chunk));
    stream.on('end', () => resolve({ status, body }));
    stream.on('error', reject);
    stream.end();
  });
}

/** A plain request from `localAddress` (127.0.0.1 is the trusted proxy, 127.0.0.2 a client connecting directly). */
function getFrom(localAddress: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: plainPort, path, headers, localAddress, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `name{labels} value` lines of a scrape, as a map. */
function series(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    found.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return found;
}

test('/metrics after real traffic: every documented gateway series with its route label and the right values; a route with `metrics: true` under its name; no upstream address anywhere', async () => {
  // One 503 first, then answers: the route's target ends healthy.
  assert.is((await fetchRaw(`http://127.0.0.1:${plainPort}/users/fail`)).status, 503);
  assert.is((await fetchRaw(`http://127.0.0.1:${plainPort}/users/1`)).status, 200);
  const session = await h2Session();
  const socket = new WebSocket(`ws://127.0.0.1:${plainPort}/chat/room`);
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let inFlight: Promise<unknown> = Promise.resolve();
  try {
    assert.is((await h2Get(session, { ':path': '/users/2' })).status, 200);
    assert.is((await fetchRaw(`http://127.0.0.1:${plainPort}/down/x`)).status, 502);
    await opened;
    inFlight = h2Get(session, { ':path': '/users/hold' });
    assert.ok(await waitFor(() => held.length === 1, 5_000), 'a request is held upstream');
    // A reload accepted, then one refused (the file broken), then the file restored.
        assert.ok(await running.reload());
    files.write('gateway.yaml', configText.replace('upstream: http://127.0.0.1', 'upstream: ftp://127.0.0.1'));
    assert.not.ok(await running.reload());
    files.write('gateway.yaml', configText);

    const scrape = await fetchRaw(`http://127.0.0.1:${plainPort}/metrics`);
    assert.is(scrape.status, 200);
    assert.match(String(scrape.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const found = series(scrape.text);
    const expect = (name: string, value: number) => assert.is(found.get(name), value, name);
    // docs/gateway.md: relay_gateway_requests_total{route}, …_request_errors_total{route}, …_in_flight_requests,
    // …_websocket_sessions{route}, …_target_up{route}, …_config_reloads_total{result}.
    expect('relay_gateway_requests_total{route="users"}', 3); // the held one counts when it ends
    expect('relay_gateway_request_errors_total{route="users"}', 1);
    expect('relay_gateway_requests_total{route="down"}', 1);
    expect('relay_gateway_request_errors_total{route="down"}', 1);
    expect('relay_gateway_in_flight_requests', 1);
    expect('relay_gateway_websocket_sessions{route="chat"}', 1);
    expect('relay_gateway_websocket_sessions{route="users"}', 0);
    expect('relay_gateway_target_up{route="users"}', 1);
    expect('relay_gateway_target_up{route="down"}', 0);
    expect('relay_gateway_config_reloads_total{result="success"}', 1);
    expect('relay_gateway_config_reloads_total{result="failure"}', 1);
    // docs/observability.md's series, the `relay` label being the route's name (packages/gateway/README.md).
    expect('relay_requests_total{relay="users",route="",method="GET",status_class="2xx",target=""}', 2);
    expect('relay_requests_total{relay="users",route="",method="GET",status_class="5xx",target=""}', 1);
    expect('relay_requests_in_flight{relay="users"}', 1);
    assert.ok(found.has('process_cpu_seconds_total'), 'the process metrics (prom-client defaults)');
    // "labelled by route, never by upstream address": /metrics is on by default.
    assert.not.ok(scrape.text.includes(`127.0.0.1:${api.port}`), 'an upstream address is published');
  } finally {
    for (const answer of held.splice(0)) answer();
    await inFlight;
    socket.terminate();
    session.close();
  }
});

test('rate-limit keys behind trustProxy: a trusted proxy\'s X-Forwarded-For names the client (its rightmost entry the proxy did not add), an untrusted peer\'s is ignored; the same over HTTP/2', async () => {
  // From the trusted proxy (127.0.0.1): two clients, two buckets of 1.
  assert.is((await getFrom('127.0.0.1', '/lim/a', { 'x-forwarded-for': '198.51.100.1' })).status, 200);
  assert.is((await getFrom('127.0.0.1', '/lim/a', { 'x-forwarded-for': '198.51.100.2' })).status, 200);
  // The client may prepend anything; the address the proxy appended is the key (nginx real_ip_recursive).
  assert.is((await getFrom('127.0.0.1', '/lim/a', { 'x-forwarded-for': '203.0.113.9, 198.51.100.1' })).status, 429);
  // A client connecting directly (127.0.0.2, not a listed proxy): its X-Forwarded-For is no key and is not passed on.
  const direct = await getFrom('127.0.0.2', '/lim/b', { 'x-forwarded-for': '198.51.100.3' });
  assert.is(direct.status, 200);
  assert.is((JSON.parse(direct.body) as { xff: string }).xff, '127.0.0.2');
  assert.is((await getFrom('127.0.0.2', '/lim/b', { 'x-forwarded-for': '198.51.100.4' })).status, 429);
  // HTTP/2 through the trusted proxy's address.
  const session = await h2Session();
  try {
    assert.is((await h2Get(session, { ':path': '/lim/c', 'x-forwarded-for': '198.51.100.5' })).status, 200);
    assert.is((await h2Get(session, { ':path': '/lim/c', 'x-forwarded-for': '198.51.100.6' })).status, 200);
    assert.is((await h2Get(session, { ':path': '/lim/c', 'x-forwarded-for': '198.51.100.5' })).status, 429);
  } finally {
    session.close();
  }
});

test.run();
