// Review s36 (issues 6 and 16): the WebSocket path through the gateway (createGateway in process,
// on real sockets): a relayed session with subprotocol and close codes, `websocket: false` (501),
// per-route options (maxPayload → 1009), the session count on the status JSON after sessions and
// refusals, and gateway.shutdown() closing open sessions with 1001.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { close, listen, sendRaw } from '@relay/testkit';
import { createGateway, loadConfig, type Gateway } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { configDir } from './bin.js';

const files = configDir();
const logger = createLogger({ level: 'error', stream: { write: () => true } as unknown as NodeJS.WritableStream });

let upstreamServer: Server;
let wss: WebSocketServer;
let upstreamUrl: string;
const handshakes: IncomingMessage[] = [];
const peers: WebSocket[] = [];
let gateway: Gateway;
let server: Server;
let base: string;

test.before(async () => {
  upstreamServer = createServer();
  wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has('v2.chat') ? 'v2.chat' : false),
  });
  upstreamServer.on('upgrade', (req, socket, head) => {
    handshakes.push(req);
    if (req.url?.startsWith('/private')) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 12\r\nConnection: close\r\n\r\nlog in first');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      peers.push(ws);
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
    });
  });
  upstreamUrl = await listen(upstreamServer);
  const path = files.write(
    'ws.yaml',
    [
      'listen: [{ port: 0 }]',
      'status: { path: /_relay/status }',
      'routes:',
      '  - name: chat',
      '    match: { path: /chat }',
      `    upstream: ${upstreamUrl}`,
      '  - name: small',
      '    match: { path: /small }',
      `    upstream: ${upstreamUrl}`,
      '    websocket: { maxPayload: 1024 }',
      '  - name: nows',
      '    match: { path: /nows }',
      `    upstream: ${upstreamUrl}`,
      '    websocket: false',
      '',
    ].join('\n'),
  );
  gateway = createGateway(await loadConfig(path), { logger });
  await gateway.startup();
  server = createServer(gateway.handle);
  server.on('upgrade', gateway.upgrade);
  base = (await listen(server)).replace('http:', 'ws:');
});

test.after(async () => {
  await gateway.shutdown(1_000);
  await close(server);
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  await close(upstreamServer);
  files.cleanup();
});

function open(url: string, protocols: string[] = []): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
  });
}

const closedWith = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));

async function sessionCount(): Promise<number> {
  const response = await fetch(`${base.replace('ws:', 'http:')}/_relay/status.json`);
  return ((await response.json()) as { websocketSessions: number }).websocketSessions;
}

// Issue 6: subprotocol negotiation and close codes both ways, through the gateway's routing.
test('a session through a gateway route: the upstream’s subprotocol, the prefix stripped, 4001 and a UTF-8 reason both ways', async () => {
  const client = await open(`${base}/chat/room?x=1`, ['v1.chat', 'v2.chat']);
  assert.is(client.protocol, 'v2.chat');
  assert.is(handshakes.at(-1)!.url, '/room?x=1');
  const echoed = new Promise<string>((resolve) => client.once('message', (data) => resolve(String(data))));
  client.send('héllo');
  assert.is(await echoed, 'héllo');
  const peer = peers.at(-1)!;
  const seenByPeer = closedWith(peer);
  client.close(4001, 'au revoir ✓');
  assert.equal(await seenByPeer, { code: 4001, reason: 'au revoir ✓' });
});

// docs/gateway.md: "`websocket` is on unless `websocket: false` (upgrades then get 501)".
test('a route with websocket: false answers an upgrade 501, and no upstream handshake is made', async () => {
  const before = handshakes.length;
  const raw = await sendRaw(
    Number(new URL(base).port),
    'GET /nows/x HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    1_000,
  );
  assert.match(raw, /^HTTP\/1\.1 501 /);
  assert.is(handshakes.length, before);
});

// Issue 16: per-session message size limits (1009); the gateway schema's `maxPayload`.
test('a route with websocket: { maxPayload: 1024 }: a bigger message closes the client with 1009; one at the limit passes', async () => {
  const client = await open(`${base}/small/x`);
  const echoed = new Promise<number>((resolve) => client.once('message', (data) => resolve((data as Buffer).length)));
  client.send(Buffer.alloc(1024));
  assert.is(await echoed, 1024);
  const end = closedWith(client);
  client.send(Buffer.alloc(1025));
  assert.is((await end).code, 1009);
});

// Issue 6: "upstream 401 on the handshake seen as 401"; the status JSON counts open sessions only.
test('an upstream 401 through the gateway reaches the client as 401 with its body; the session count returns to 0', async () => {
  const raw = await sendRaw(
    Number(new URL(base).port),
    'GET /chat/private HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    1_000,
  );
  assert.match(raw, /^HTTP\/1\.1 401 /);
  assert.match(raw, /www-authenticate: Bearer/i);
  assert.match(raw, /log in first$/);
  let count = await sessionCount();
  for (let tries = 0; count !== 0 && tries < 30; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    count = await sessionCount();
  }
  assert.is(count, 0, 'no session counted after the sessions closed and the refusal');
});

// Issue 6: "the relay's shutdown() closes relayed sockets with 1001", through the gateway.
test('gateway.shutdown() closes an open session with 1001 on both sides', async () => {
  const client = await open(`${base}/chat/last`);
  const peer = peers.at(-1)!;
  assert.is(await sessionCount(), 1);
  const seenByClient = closedWith(client);
  const seenByPeer = closedWith(peer);
  await gateway.shutdown(2_000);
  assert.is((await seenByClient).code, 1001);
  assert.is((await seenByPeer).code, 1001);
});

test.run();
