// Real servers and clients for the @relay/ws tests: a `ws` upstream on a real http.Server, a relay
// on another one, and `ws` clients, with every TCP connection counted so tests can show none is left.
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket, WebSocketServer, type ClientOptions, type ServerOptions } from 'ws';
import { createRelay, type Relay, type RelayOptions } from '@relay/core';
import { close, listen, tlsFixture, waitFor } from '@relay/testkit';

/** Counts a server's open TCP connections. */
function track(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return sockets;
}

/** A real `ws` upstream. */
export interface WsUpstream {
  /** `http://127.0.0.1:port` (or `https:`), for `targetBaseUrl`. */
  url: string;
  wss: WebSocketServer;
  server: Server;
  /** Open TCP connections to the upstream server. */
  sockets: Set<Socket>;
  /** Every handshake request the upstream received (accepted or not). */
  handshakes: IncomingMessage[];
  /** Every accepted upstream-side WebSocket. */
  peers: WebSocket[];
  close(): Promise<void>;
}

/** Options of `startWsUpstream`. */
export interface WsUpstreamOptions extends Pick<ServerOptions, 'handleProtocols' | 'verifyClient' | 'perMessageDeflate' | 'maxPayload' | 'autoPong'> {
  /** Called for each accepted session; the default echoes every message with its type. */
  onConnection?: (ws: WebSocket, req: IncomingMessage) => void;
  /** Extra headers on the upstream's 101. */
  headers?: string[];
  tls?: boolean;
}

/** Starts a `ws` server on 127.0.0.1 port 0 that echoes every message, text as text and binary as binary. */
export async function startWsUpstream(options: WsUpstreamOptions = {}): Promise<WsUpstream> {
  const { onConnection = echo, headers, tls, ...serverOptions } = options;
  const server = tls ? (createHttpsServer(tlsFixture) as unknown as Server) : createServer();
  const sockets = track(server);
  const handshakes: IncomingMessage[] = [];
  const peers: WebSocket[] = [];
  const wss = new WebSocketServer({ ...serverOptions, server });
  server.prependListener('upgrade', (req: IncomingMessage) => handshakes.push(req));
  if (headers !== undefined) wss.on('headers', (lines) => lines.push(...headers));
  wss.on('connection', (ws, req) => {
    peers.push(ws);
    ws.on('error', () => {});
    onConnection(ws, req);
  });
  const base = await listen(server);
  const url = tls ? base.replace('http:', 'https:') : base;
  return {
    url,
    wss,
    server,
    sockets,
    handshakes,
    peers,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await close(server);
    },
  };
}

/** The default upstream behaviour: echo. */
export function echo(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
}

/** A relay with a WebSocket transport on a real http.Server. */
export interface Gateway {
  /** `ws://127.0.0.1:port` */
  url: string;
  port: number;
  relay: Relay;
  server: Server;
  /** Open TCP connections to the relay's server. */
  sockets: Set<Socket>;
  close(): Promise<void>;
}

/** Starts a relay, serves it (HTTP and upgrades) on 127.0.0.1 port 0. */
export async function startGateway(options: RelayOptions): Promise<Gateway> {
  const relay = createRelay(options);
  await relay.startup();
  const server = createServer(relay.handle);
  server.on('upgrade', relay.upgrade);
  const sockets = track(server);
  const base = await listen(server);
  return {
    url: base.replace('http:', 'ws:'),
    port: Number(new URL(base).port),
    relay,
    server,
    sockets,
    close: async () => {
      await relay.shutdown({ timeout: 1000 });
      await close(server);
    },
  };
}

/** Opens a `ws` client; resolves once it is open, rejects with the handshake's failure. */
export function openClient(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.on('error', reject);
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      reject(new Error(`unexpected response ${res.statusCode}`));
      ws.terminate();
    });
    ws.on('open', () => {
      ws.removeListener('error', reject);
      ws.on('error', () => {});
      resolve(ws);
    });
  });
}

/** What a client saw of a refused handshake. */
export interface Refusal {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Opens a `ws` client expecting a refusal; resolves with the status, headers and body it got. */
export function refusedHandshake(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.on('error', reject);
    ws.on('open', () => {
      ws.terminate();
      reject(new Error('the handshake was accepted'));
    });
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        ws.removeAllListeners('error');
        ws.on('error', () => {});
        ws.terminate();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() });
      });
    });
  });
}

/** A message as a side received it. */
export interface Received {
  data: Buffer;
  isBinary: boolean;
}

/** Collects every message a WebSocket receives, to await the next ones in order. */
export function inbox(ws: WebSocket): { next(): Promise<Received>; all: Received[] } {
  const all: Received[] = [];
  const waiting: Array<(message: Received) => void> = [];
  let read = 0;
  ws.on('message', (data, isBinary) => {
    const message = { data: data as Buffer, isBinary };
    all.push(message);
    const resolve = waiting.shift();
    if (resolve !== undefined) {
      read++;
      resolve(message);
    }
  });
  return {
    all,
    next: () =>
      new Promise((resolve) => {
        if (read < all.length) resolve(all[read++]!);
        else waiting.push(resolve);
      }),
  };
}

/** Resolves with the close code and reason a WebSocket ends with. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) {
      resolve({ code: -1, reason: 'already closed' });
      return;
    }
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

/** Resolves with the next upstream-side WebSocket the upstream accepts. */
export function nextPeer(upstream: WsUpstream): Promise<WebSocket> {
  return new Promise((resolve) => upstream.wss.once('connection', (ws) => resolve(ws)));
}

/** Waits until neither the relay's server nor the upstream's holds an open connection. */
export async function noSocketsLeft(gateway: Gateway, upstream: WsUpstream, timeoutMs = 10_000): Promise<boolean> {
  return waitFor(() => gateway.sockets.size === 0 && upstream.sockets.size === 0, timeoutMs);
}

/**
 * A raw client: completes a WebSocket handshake on a TCP socket and resolves once the 101 came.
 * What the relay sends from then on is read and dropped (a client that never answers a close,
 * or one that floods pings and reads nothing it is sent); write frames to it yourself.
 */
export function rawHandshake(port: number, path = '/raw', options: { tls?: boolean; paused?: boolean } = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // `tls`: a wss:// client (the test certificate not checked); `paused`: nothing is read until the test resumes it.
    const socket = options.tls === true ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : connect(port, '127.0.0.1');
    socket.on('error', reject);
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    let head = '';
    socket.on('data', function onHead(chunk: Buffer) {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeListener('data', onHead);
      socket.removeListener('error', reject);
      socket.on('error', () => {});
      if (options.paused === true) socket.pause();
      else socket.resume();
      if (head.startsWith('HTTP/1.1 101')) resolve(socket);
      else reject(new Error(head.split('\r\n')[0]));
    });
  });
}

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** A correct `101` head for the handshake whose key is `key`. */
export function switchingProtocols(key: string): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`;
}

/** A TCP upstream written byte by byte by the test. */
export interface RawUpstream {
  url: string;
  /** The connections open now. */
  sockets: Set<Socket>;
  /** Every request head received. */
  heads: string[];
  /** Destroys the connections and stops listening. */
  close(): Promise<void>;
}

/**
 * A TCP upstream that hands each connection's request head (with its `Sec-WebSocket-Key`) to
 * `onHead` once, then leaves the socket to it: bad 101s, refusals, frames written by hand.
 */
export async function startRawUpstream(onHead: (socket: Socket, key: string) => void): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const heads: string[] = [];
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    socket.on('data', function onData(chunk: Buffer) {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeListener('data', onData);
      heads.push(head);
      onHead(socket, /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? '');
    });
  });
  const url = await listen(server);
  const close = async (): Promise<void> => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { url, sockets, heads, close };
}
