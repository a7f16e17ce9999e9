// The one upstream every proxy forwards to: small GET, 64 KiB echo, 10 MiB download, WebSocket echo.
// `startH2cUpstream` gives the same answers over h2c (prior knowledge) on a second port, for http2Transport.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createH2cServer } from 'node:http2';
import type { Server as NetServer } from 'node:net';
import { WebSocketServer } from 'ws';
import { DOWNLOAD_CHUNK, DOWNLOAD_SIZE, JSON_SIZE, SMALL_BODY, SMALL_SET_COOKIE, asciiPattern, jsonDocument } from './settings.js';

const small = Buffer.from(SMALL_BODY);
const chunk = asciiPattern(DOWNLOAD_CHUNK);
const smallHeaders = {
  'content-type': 'application/json',
  'content-length': small.length,
  'set-cookie': [SMALL_SET_COOKIE],
};
const json = jsonDocument(JSON_SIZE);
const jsonHeaders = { 'content-type': 'application/json; charset=utf-8', 'content-length': json.length };
const downloadHeaders = { 'content-type': 'application/octet-stream', 'content-length': DOWNLOAD_SIZE };

/** The bytes of the download: the same 64 KiB pattern repeated (DOWNLOAD_SIZE is a multiple of it). */
export function downloadChunk(): Buffer {
  return chunk;
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'content-length': 0 });
  res.end();
}

/** Writes DOWNLOAD_SIZE bytes with backpressure, never buffering more than the socket asks for. */
function download(res: ServerResponse): void {
  res.writeHead(200, downloadHeaders);
  let left = DOWNLOAD_SIZE / DOWNLOAD_CHUNK;
  const write = (): void => {
    while (left > 0) {
      left--;
      if (left === 0) {
        res.end(chunk);
        return;
      }
      if (!res.write(chunk)) {
        res.once('drain', write);
        return;
      }
    }
  };
  res.on('close', () => {
    left = 0;
  });
  write();
}

function echo(req: IncomingMessage, res: ServerResponse): void {
  const length = req.headers['content-length'];
  res.writeHead(200, length === undefined ? { 'content-type': 'application/octet-stream' } : { 'content-type': 'application/octet-stream', 'content-length': length });
  req.pipe(res);
}

/** Answers every workload's request: node:http's and node:http2's compatibility API alike. */
function answer(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (url.startsWith('/small')) {
    req.resume();
    res.writeHead(200, smallHeaders);
    res.end(small);
  } else if (url === '/json64k') {
    req.resume();
    res.writeHead(200, jsonHeaders);
    res.end(json);
  } else if (url === '/echo' && req.method === 'POST') echo(req, res);
  else if (url === '/download') {
    req.resume();
    download(res);
  } else {
    req.resume();
    notFound(res);
  }
}

export function startUpstream(): NetServer {
  const server = createServer(answer);
  // Longer than any pause between two windows, so no proxy meets a keep-alive connection the
  // upstream is closing (that race is a real-world cost, but not what this harness measures).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
  wss.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  return server;
}

/** The same answers over h2c with prior knowledge (node:http2's compatibility API), for `relay-h2`. */
export function startH2cUpstream(): NetServer {
  return createH2cServer(answer as unknown as Parameters<typeof createH2cServer>[1]);
}
