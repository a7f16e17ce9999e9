// Real upstreams and servers for the @relay/observe tests: an HTTP upstream answering a script of
// statuses, a `ws` echo upstream, and a relay served with its upgrade listener.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, type Relay, type RelayOptions } from '@relay/core';
import { close, listen, startUpstream, type Upstream } from '@relay/testkit';
import { websocket } from '@relay/ws';

/** An upstream answering the n-th request with `statuses[n]` (the last one repeats) and a short body. */
export function scripted(statuses: number[]): Promise<Upstream> {
  let count = 0;
  return startUpstream((_req, res) => {
    const status = statuses[Math.min(count++, statuses.length - 1)]!;
    const body = status === 200 ? 'hello' : `status ${status}`;
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

/** A `ws` upstream that echoes every message; `handshakes` keeps each handshake request. */
export interface EchoWs {
  url: string;
  handshakes: IncomingMessage[];
  close(): Promise<void>;
}

export async function startEchoWs(): Promise<EchoWs> {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  const handshakes: IncomingMessage[] = [];
  wss.on('connection', (ws, req) => {
    handshakes.push(req);
    ws.on('message', (data, binary) => ws.send(data, { binary }));
  });
  const url = await listen(server);
  return {
    url,
    handshakes,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      wss.close();
      await close(server);
    },
  };
}

/** A relay with the WebSocket transport, served by a real server with its upgrade listener. */
export interface WsRelayServer {
  url: string;
  relay: Relay;
  server: Server;
  close(): Promise<void>;
}

export async function serveWithUpgrades(options: RelayOptions): Promise<WsRelayServer> {
  const relay = createRelay({ websocket: websocket(), ...options });
  await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const url = await listen(server);
  return {
    url,
    relay,
    server,
    close: async () => {
      await relay.shutdown({ timeout: 1000 });
      await close(server);
    },
  };
}

/** Opens a WebSocket, sends each message and waits for its echo, then closes and waits for the close. */
export async function echoSession(url: string, messages: string[]): Promise<string[]> {
  const ws = new WebSocket(url.replace('http:', 'ws:'));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const echoes: string[] = [];
  for (const message of messages) {
    const echoed = new Promise<string>((resolve) => ws.once('message', (data) => resolve(String(data))));
    ws.send(message);
    echoes.push(await echoed);
  }
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.close(1000, 'done');
  await closed;
  return echoes;
}

/** A `ws` upstream that accepts each handshake 300 ms late: long after a client that leaves at once. */
export interface LateWs {
  url: string;
  handshakes(): number;
  close(): Promise<void>;
}

export async function startLateWs(): Promise<LateWs> {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  let handshakes = 0;
  server.on('upgrade', (req, socket, head) => {
    handshakes++;
    socket.on('error', () => {});
    setTimeout(() => wss.handleUpgrade(req, socket, head, (ws) => ws.on('error', () => {})), 300);
  });
  const url = await listen(server);
  return {
    url,
    handshakes: () => handshakes,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await close(server);
    },
  };
}

/** Sends a WebSocket handshake to `url`, waits until `upstream` has it, then leaves (closes the connection). */
export async function handshakeAndLeave(url: string, upstream: LateWs): Promise<void> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  socket.on('error', () => {});
  socket.write('GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  for (let round = 0; upstream.handshakes() === 0; round++) {
    if (round === 200) throw new Error('the upstream never saw the handshake');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  socket.destroy();
}

/**
 * POSTs 1,600 bytes chunked (no Content-Length), in two writes 50 ms apart, so a size limit can only
 * count them as they stream; resolves with the status.
 */
export function postChunked(url: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.write(Buffer.alloc(800, 'y'));
    setTimeout(() => req.end(Buffer.alloc(800, 'y')), 50);
  });
}
