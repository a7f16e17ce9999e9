// Shared by the front-door tests: one real upstream (HTTP and WebSocket on one port) and the
// checks every front door must pass with a real HTTP client and a real `ws` client.
import { request } from 'node:http';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createRelay, type Relay } from '@relay/core';
import { echoHandler, fetchRaw, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { websocket } from '@relay/ws';

export interface Backend {
  upstream: Upstream;
  wss: WebSocketServer;
  relay(): Relay;
  close(): Promise<void>;
}

/**
 * An upstream whose `/stream` echoes the request body as it arrives (head first), whose
 * WebSocket echoes `url message`, and which answers anything else with testkit's JSON echo.
 */
export async function startBackend(): Promise<Backend> {
  const upstream = await startUpstream(
    (req, res, seen) => {
      if (req.url?.startsWith('/stream')) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.flushHeaders();
        req.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        seen.body = Buffer.concat(chunks);
        echoHandler(req, res, seen);
      });
    },
    { streaming: true },
  );
  const wss = new WebSocketServer({ server: upstream.server });
  wss.on('connection', (socket, req) => socket.on('message', (data) => socket.send(`${req.url} ${String(data)} ${req.headers['x-forwarded-prefix'] ?? '-'}`)));
  const relays: Relay[] = [];
  return {
    upstream,
    wss,
    relay() {
      const relay = createRelay({ targetBaseUrl: upstream.url, websocket: websocket() });
      relays.push(relay);
      return relay;
    },
    async close() {
      await Promise.all(relays.map((relay) => relay.shutdown({ timeout: 500 })));
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
      await upstream.close();
    },
  };
}

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** GET under the prefix: the path after it, the query byte for byte, X-Forwarded-Prefix. */
export async function checkGet(base: string, prefix: string): Promise<void> {
  const response = await fetchRaw(`${base}${prefix}/users/7?q=%2F..&b=a+b`);
  assert.is(response.status, 200, response.text);
  const echo = JSON.parse(response.text) as Echo;
  assert.is(echo.url, '/users/7?q=%2F..&b=a+b');
  assert.is(echo.headers['x-forwarded-prefix'], prefix);
  const bare = JSON.parse((await fetchRaw(`${base}${prefix}?x=1`)).text) as Echo;
  assert.is(bare.url, '/?x=1');
}

/** A body the framework would parse (and refuse: it is not JSON) reaches the upstream byte for byte. */
export async function checkUnparsedBody(base: string, prefix: string): Promise<void> {
  const body = '{"not json';
  const json = await fetchRaw(`${base}${prefix}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  assert.is(json.status, 200, json.text);
  assert.is((JSON.parse(json.text) as Echo).body, body);
  const form = await fetchRaw(`${base}${prefix}/echo`, { method: 'PUT', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&a=2' });
  assert.is((JSON.parse(form.text) as Echo).body, 'a=1&a=2');
  const none = await fetchRaw(`${base}${prefix}/echo`, { method: 'POST', body: Buffer.from([0, 1, 2]) });
  assert.is((JSON.parse(none.text) as Echo).body, '\u0000\u0001\u0002');
}

/**
 * Both directions stream: the client sends one chunk and waits for it to come back through the
 * relay before it sends the next; a buffering front door would deadlock (bounded by a timeout).
 */
export async function checkStreaming(base: string, prefix: string): Promise<void> {
  const url = new URL(`${base}${prefix}/stream`);
  const chunks = ['first|', 'second|', 'third'];
  const received = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no streaming: a chunk did not come back within 10 s')), 10_000);
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, agent: false });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      let sent = 1;
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (sent < chunks.length && text.endsWith(chunks[sent - 1]!)) {
          req.write(chunks[sent]);
          sent++;
          if (sent === chunks.length) req.end();
        }
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });
    req.write(chunks[0]);
  });
  assert.is(received, chunks.join(''));
}

/** A WebSocket under the prefix reaches the upstream's, both ways; the client's traversal is refused. */
export async function checkWebSocket(base: string, prefix: string): Promise<void> {
  const socket = new WebSocket(`${base.replace('http:', 'ws:')}${prefix}/live/room?x=1`);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send('hello');
  const message = await new Promise<string>((resolve) => socket.once('message', (data) => resolve(String(data))));
  assert.is(message, `/live/room?x=1 hello ${prefix}`);
  socket.close();
  await new Promise((resolve) => socket.once('close', resolve));
}

/** Client traversal under the prefix gets the relay's 400, not the upstream. */
export async function checkTraversal(base: string, prefix: string, upstream: Upstream): Promise<void> {
  const before = upstream.requests.length;
  // Raw bytes: a WHATWG URL would resolve "%2e%2e" in the client before sending.
  const response = await sendRaw(Number(new URL(base).port), `GET ${prefix}/a/%2e%2e/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  assert.match(response, /^HTTP\/1.1 400 /);
  assert.is(upstream.requests.length, before);
}
