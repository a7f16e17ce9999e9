import { createServer, type Server, type Socket } from 'node:net';
import { listen } from './listen.js';

/** What a fault-injecting upstream does with a request, chosen by the request path. */
export type Fault =
  | 'ok'
  | 'hang'
  | 'head-then-stall'
  | 'reset-mid-body'
  | 'close-mid-body'
  | 'bad-status-line'
  | 'conflicting-content-length'
  | 'oversized-headers'
  | 'reset-before-head'
  | 'close-on-reuse'
  | 'switching-protocols'
  | 'bare-101'
  | 'bad-chunk-with-head'
  | 'bad-chunk-later'
  | 'trailing-garbage';

/** A TCP server that speaks just enough HTTP/1.1 to misbehave on purpose. */
export interface FaultyUpstream {
  url: string;
  port: number;
  server: Server;
  /** Connections accepted so far. */
  accepted: number;
  /** Connections open now. */
  readonly open: number;
  /** Requests read so far, as `METHOD path`. */
  requests: string[];
  /** Destroys every open connection and keeps listening. */
  dropConnections(): void;
  close(): Promise<void>;
}

/**
 * Starts a fault-injecting upstream on 127.0.0.1. The first path segment names the fault
 * (`/hang/x`, `/reset-mid-body`, …); anything else answers `200 ok` with keep-alive.
 * `close-on-reuse` answers the first request on a connection normally and resets the
 * connection when a second request arrives on it, as an upstream closing an idle
 * keep-alive socket just as it is reused does.
 */
export async function startFaultyUpstream(): Promise<FaultyUpstream> {
  const sockets = new Set<Socket>();
  const state = { accepted: 0, requests: [] as string[] };
  const server = createServer((socket) => {
    state.accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    let served = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) !== -1) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const [method, path] = head.split('\r\n')[0]!.split(' ');
        state.requests.push(`${method} ${path}`);
        const fault = (path ?? '/').split(/[/?]/)[1] as Fault;
        behave(socket, fault, served++);
      }
    });
  });
  const url = await listen(server);
  return {
    url,
    port: Number(new URL(url).port),
    server,
    get accepted() {
      return state.accepted;
    },
    get open() {
      return sockets.size;
    },
    requests: state.requests,
    dropConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function behave(socket: Socket, fault: Fault, servedBefore: number): void {
  switch (fault) {
    case 'hang':
      return;
    case 'head-then-stall':
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst ten!');
      return;
    case 'reset-mid-body':
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n' + 'x'.repeat(1000));
      setTimeout(() => socket.resetAndDestroy(), 20);
      return;
    case 'close-mid-body':
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
      setTimeout(() => socket.end(), 20);
      return;
    case 'reset-before-head':
      socket.resetAndDestroy();
      return;
    case 'bad-status-line':
      socket.end('HTTP/1.1 abc nonsense\r\n\r\n');
      return;
    case 'conflicting-content-length':
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!');
      return;
    case 'oversized-headers':
      socket.end(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(100 * 1024)}\r\ncontent-length: 2\r\n\r\nok`);
      return;
    case 'close-on-reuse':
      if (servedBefore > 0) {
        socket.resetAndDestroy();
        return;
      }
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
      return;
    case 'switching-protocols':
      // A 101 with Upgrade to a request that asked for none.
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
      return;
    case 'bare-101':
      socket.write('HTTP/1.1 101 Switching Protocols\r\n\r\n');
      return;
    case 'bad-chunk-with-head':
      // One write: the head and a malformed chunk size arrive in the same TCP segment.
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n');
      return;
    case 'bad-chunk-later':
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
      setTimeout(() => socket.write('zz\r\nworld\r\n'), 50);
      return;
    case 'trailing-garbage':
      // A whole response, then bytes that are not HTTP, in the same TCP segment.
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokGARBAGE\r\n\r\n');
      return;
    default:
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
  }
}
