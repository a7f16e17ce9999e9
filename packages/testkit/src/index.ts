import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { listen, listenHttp2, type ListeningHttp2 } from './listen.js';

export { listen, listenHttp2, type ListeningHttp2 };
export { writeChunks, type ChunkSink } from './write-chunks.js';
export { bytePattern, h2Request, sha256, type H2Answer } from './bodies.js';

/** Closes a server and every connection it holds. */
export function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** What an upstream saw of one request. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** A real upstream `http.Server` on 127.0.0.1 that records what it receives. */
export interface Upstream {
  url: string;
  port: number;
  server: Server;
  /** Every request received, in order, with its whole body. */
  requests: SeenRequest[];
  close(): Promise<void>;
}

/**
 * Starts an upstream. `handler` answers; by default it echoes method, url and headers as JSON.
 * The body is read fully before `handler` runs unless `streaming` is set.
 */
export async function startUpstream(
  handler: (req: IncomingMessage, res: ServerResponse, seen: SeenRequest) => void = echoHandler,
  options: { streaming?: boolean } = {},
): Promise<Upstream> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const seen: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
    };
    requests.push(seen);
    if (options.streaming) {
      handler(req, res, seen);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.body = Buffer.concat(chunks);
      handler(req, res, seen);
    });
  });
  const url = await listen(server);
  return { url, port: (server.address() as AddressInfo).port, server, requests, close: () => close(server) };
}

/** The default upstream handler: answers 200 with `{ method, url, headers, body }` as JSON. */
export function echoHandler(req: IncomingMessage, res: ServerResponse, seen: SeenRequest): void {
  const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: seen.body.toString('utf8') });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The part of a relay the test server needs. */
/** The answer of `trailerEchoHandler`: the request body and the trailer fields the upstream received. */
export interface TrailerEcho {
  body: string;
  trailers: Record<string, string>;
}

/** An upstream handler answering with JSON of the body and the trailer fields it received (`TrailerEcho`). */
export function trailerEchoHandler(req: IncomingMessage, res: ServerResponse, seen: SeenRequest): void {
  const answer = JSON.stringify({ body: seen.body.toString(), trailers: req.trailers });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) });
  res.end(answer);
}

/** The `TrailerEcho` in a raw HTTP/1.1 response (`sendRaw`'s text). */
export function trailerEchoOf(raw: string): TrailerEcho {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as TrailerEcho;
}

export interface ServableRelay {
  handle: RequestListener;
  startup(): Promise<void>;
  shutdown(options?: { timeout?: number }): Promise<void>;
}

/** A relay started and served by a real `http.Server` on 127.0.0.1. */
export interface RelayServer<R extends ServableRelay> {
  url: string;
  port: number;
  relay: R;
  server: Server;
  close(): Promise<void>;
}

/** Starts a relay and serves it with `relay.handle` (or `listener`) on a real server. */
export async function serveRelay<R extends ServableRelay>(relay: R, listener?: RequestListener): Promise<RelayServer<R>> {
  await relay.startup();
  const server = createServer(listener ?? relay.handle);
  const url = await listen(server);
  return {
    url,
    port: (server.address() as AddressInfo).port,
    relay,
    server,
    close: async () => {
      await close(server);
      await relay.shutdown({ timeout: 1000 });
    },
  };
}

/** A pino-style logger, structurally. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** A response as the test client received it. */
export interface ClientResponse {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  text: string;
  /** False when the connection ended before the response was complete. */
  complete: boolean;
}

/** Options of the test client. */
export interface FetchOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
}

/**
 * A real HTTP/1.1 client request on a fresh connection. Resolves with the whole response,
 * `complete: false` when the connection broke mid-body; rejects only when no response head came.
 */
export function fetchRaw(url: string, options: FetchOptions = {}): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      const done = () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body,
          text: body.toString('utf8'),
          complete: res.complete,
        });
      };
      res.on('end', done);
      res.on('error', () => {});
      res.on('close', () => {
        if (!res.complete) done();
      });
    });
    req.end(options.body);
  });
}

/** Sends raw bytes on a new TCP connection and resolves with everything read until it closes (or `timeoutMs`). */
export function sendRaw(port: number, payload: string | Buffer, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', finish);
    socket.on('close', finish);
    socket.write(payload);
  });
}

/** A logger that keeps every line, for assertions. */
export interface MemoryLogger extends Logger {
  lines: Array<{ level: 'debug' | 'info' | 'warn' | 'error'; fields: Record<string, unknown>; message: string }>;
}

/** Makes a logger that records every line. */
export function memoryLogger(): MemoryLogger {
  const lines: MemoryLogger['lines'] = [];
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (fields: Record<string, unknown>, message: string) => {
    lines.push({ level, fields, message });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 10 ms until it returns true or `timeoutMs` passes; resolves with the last result. */
export async function waitFor(check: () => boolean, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await delay(10);
  }
  return check();
}

/**
 * A closed port on 127.0.0.1, below the kernel's ephemeral range (32768 and up on Linux), so no
 * `listen(0)` and no outgoing connection can take it during the test. A port bound and then
 * released could be handed straight back to the test's own server by `listen(0)`: the relay
 * would then forward to itself, a loop that ended only when file descriptors ran out.
 */
export async function closedPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await refuses(port)) return port;
  }
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

/** The message of the RangeError `run` throws; throws itself when `run` throws nothing or another error. */
export function rangeErrorMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (!(error instanceof RangeError)) throw new Error(`expected a RangeError, got ${String(error)}`);
    return error.message;
  }
  throw new Error('expected a RangeError, nothing was thrown');
}

/** The message of the TypeError or RangeError an options check throws; throws itself when `run` throws nothing or another error. */
export function optionErrorMessage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (!(error instanceof TypeError || error instanceof RangeError)) throw new Error(`expected a TypeError or RangeError, got ${String(error)}`);
    return error.message;
  }
  throw new Error('expected a TypeError or RangeError, nothing was thrown');
}

/** A self-signed certificate for `localhost` and 127.0.0.1 (test use only). */
export const tlsFixture = {
  key: readFileSync(new URL('../fixtures/key.pem', import.meta.url)),
  cert: readFileSync(new URL('../fixtures/cert.pem', import.meta.url)),
};

/** A second self-signed `localhost` certificate and key: `tlsFixture` renewed, for certificate reload tests. */
export const tlsRenewedFixture = {
  key: readFileSync(new URL('../fixtures/key-renewed.pem', import.meta.url)),
  cert: readFileSync(new URL('../fixtures/cert-renewed.pem', import.meta.url)),
};

export { startFaultyUpstream, type Fault, type FaultyUpstream } from './faults.js';
export { startRedis, type RedisServer, type StartRedisOptions } from './redis.js';
export { echoMethod, type EchoMessage, type EchoMethod } from './grpc.js';
