import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket } from 'ws';
import { tlsFixture } from '@relay/testkit';
import { createRelay } from '@relay/core';
import { websocket } from '../src/index.js';
import { inbox, startWsUpstream } from './helpers.js';

// Issue 15: on an HTTP/2 server with allowHTTP1, relay.upgrade serves the HTTP/1.1 clients'
// WebSocket handshakes while relay.handle serves HTTP/2 requests, on the same port.

for (const [mode, options] of [['transparent', {}], ['terminating', { maxPayload: 1024 * 1024 }]] as const) {
  test(`${mode}: a WebSocket session through relay.upgrade on http2.createSecureServer({ allowHTTP1: true }), beside an HTTP/2 request`, async () => {
    const upstream = await startWsUpstream();
    upstream.server.on('request', (_req, res) => res.end('plain'));
    const relay = createRelay({ targetBaseUrl: upstream.url, websocket: websocket(options) });
    const server = http2.createSecureServer({ ...tlsFixture, allowHTTP1: true }, relay.handle);
    server.on('upgrade', relay.upgrade);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;

    const client = new WebSocket(`wss://127.0.0.1:${port}/chat`, { rejectUnauthorized: false });
    const messages = inbox(client);
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    client.send('over HTTP/1.1 on an HTTP/2 server');
    assert.is((await messages.next()).data.toString(), 'over HTTP/1.1 on an HTTP/2 server');
    assert.is(upstream.handshakes[0]!.url, '/chat');

    // The same port still answers HTTP/2 requests through relay.handle.
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    const answer = await new Promise<[number, string]>((resolve, reject) => {
      const stream = session.request({ ':path': '/plain' });
      let status = 0;
      let body = '';
      stream.setEncoding('utf8');
      stream.on('response', (headers) => (status = Number(headers[':status'])));
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => resolve([status, body]));
      stream.on('error', reject);
    });
    assert.equal(answer, [200, 'plain']);
    session.close();

    const closed = new Promise<number>((resolve) => client.once('close', (code) => resolve(code)));
    client.close(1000);
    assert.is(await closed, 1000);
    await relay.shutdown();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await upstream.close();
  });
}

test.run();
