// Review s36 (peers): http-proxy-middleware's e2e cases (query bytes, body-parser + fixRequestBody for forms and JSON
// with a double-byte character, Express param mounts) and http-proxy-3's WebSocket cases (every Set-Cookie of the 101
// reaches the client; an upstream that closes before the 101 answers the client instead of hanging), ported to
// toConnect and to a relay with @relay/ws. All pass today.
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import express from 'express';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocketServer } from 'ws';
import { createRelay } from '@relay/core';
import { close, fetchRaw, listen, startUpstream } from '@relay/testkit';
import { websocket } from '@relay/ws';
import { toConnect } from '../src/index.js';

test('Express: query bytes, a param mount as X-Forwarded-Prefix, and bodies a parser read (form, JSON with 文) reach the upstream', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const app = express();
  app.use('/form', express.urlencoded({ extended: false }), toConnect(relay));
  app.use('/json', express.json(), toConnect(relay));
  app.use('/users/:id', toConnect(relay));
  app.use('/api', toConnect(relay));
  const server = createServer(app);
  const url = await listen(server);
  try {
    // http-proxy-middleware "should have proxied the uri-path and uri-query".
    await fetchRaw(`${url}/api/b/c/dp?q=1&r=[2,3]`);
    assert.is(upstream.requests.at(-1)!.url, '/b/c/dp?q=1&r=[2,3]');
    assert.is(upstream.requests.at(-1)!.headers['x-forwarded-prefix'], '/api');
    await fetchRaw(`${url}/users/42/profile?z=1`);
    assert.is(upstream.requests.at(-1)!.url, '/profile?z=1');
    assert.is(upstream.requests.at(-1)!.headers['x-forwarded-prefix'], '/users/42');
    // "should proxy request body from form" / "from json".
    await fetchRaw(`${url}/form`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'foo=bar&bar=baz' });
    assert.is(upstream.requests.at(-1)!.body.toString(), 'foo=bar&bar=baz');
    const json = JSON.stringify({ foo: 'bar', bar: 'baz', doubleByte: '文' });
    await fetchRaw(`${url}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json });
    assert.equal(JSON.parse(upstream.requests.at(-1)!.body.toString()), { foo: 'bar', bar: 'baz', doubleByte: '文' });
    assert.is(upstream.requests.at(-1)!.headers['content-length'], String(Buffer.byteLength(json)));
  } finally {
    await close(server);
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

function handshake(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13' },
    });
    req.on('upgrade', (res: IncomingMessage, socket: Duplex) => {
      socket.destroy();
      resolve(`101 ${JSON.stringify(res.headers['set-cookie'])}`);
    });
    req.on('response', (res: IncomingMessage) => {
      res.resume();
      resolve(String(res.statusCode));
    });
    req.on('error', (error) => resolve(`error ${error.message}`));
    req.end();
  });
}

test('WebSocket: both Set-Cookie lines of the 101 reach the client; an upstream that closes before its 101 gives the client 502', async () => {
  const wss = new WebSocketServer({ noServer: true });
  wss.on('headers', (headers) => headers.push('Set-Cookie: test1=test1', 'Set-Cookie: test2=test2'));
  const upstream = createServer((_req, res) => res.end('okay'));
  upstream.on('upgrade', (req, socket, head) => {
    if (req.url === '/die') socket.end();
    else wss.handleUpgrade(req, socket, head, (ws) => ws.close());
  });
  const upstreamUrl = await listen(upstream);
  const relay = createRelay({ targetBaseUrl: upstreamUrl, websocket: websocket(), timeout: { read: 2000 } });
  await relay.startup();
  const gateway = createServer(relay.handle);
  gateway.on('upgrade', relay.upgrade);
  const port = Number(new URL(await listen(gateway)).port);
  try {
    assert.is(await handshake(port, '/'), '101 ["test1=test1","test2=test2"]');
    assert.is(await handshake(port, '/die'), '502');
  } finally {
    await relay.shutdown({ timeout: 200 });
    await close(gateway);
    await close(upstream);
    wss.close();
    await once(wss, 'close').catch(() => {});
  }
});

test.run();
