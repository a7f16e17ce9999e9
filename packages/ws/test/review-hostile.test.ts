// Review s35 (hostile clients): a request that asks to upgrade to something other than WebSocket.
// RFC 9110 §7.8: "A server MAY ignore a received Upgrade header field if it wishes to continue
// using the current protocol on that connection"; the h2c upgrade is deprecated (RFC 9113 §3.1)
// and servers ignore it. `curl --http2 http://gateway/…` sends exactly this request. nginx and
// Envoy answer it over HTTP/1.1; without an `upgrade` listener node:http does too. A gateway that
// mounts `relay.upgrade` for WebSockets (docs/websocket.md) answers it 400 ERR_BAD_HANDSHAKE.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, sendRaw, waitFor } from '@relay/testkit';
import { createRelay } from '@relay/core';
import { websocket } from '../src/index.js';

test('a GET with Upgrade: h2c on a relay with a websocket transport is served as a plain HTTP/1.1 request, not 400', async () => {
  const seen: IncomingMessage[] = [];
  const upstream = createServer((req, res) => {
    seen.push(req);
    res.end('ok');
  });
  const upstreamUrl = await listen(upstream);
  const relay = createRelay({ targetBaseUrl: upstreamUrl, websocket: websocket() });
  await relay.startup();
  const gateway = createServer(relay.handle);
  gateway.on('upgrade', relay.upgrade);
  await listen(gateway);
  const port = (gateway.address() as AddressInfo).port;
  try {
    const raw = await sendRaw(
      port,
      'GET /h2c HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    );
    assert.is(raw.slice(0, 12), 'HTTP/1.1 200', raw.split('\r\n\r\n')[1] ?? raw);
    assert.ok(raw.endsWith('ok'), 'the upstream answer, relayed');
    assert.is(seen.length, 1, 'the upstream got the request');
    assert.is(seen[0]!.headers.upgrade, undefined, 'without the Upgrade header');
    assert.ok(await waitFor(() => relay.inFlight === 0));
  } finally {
    gateway.closeAllConnections();
    await close(gateway);
    await relay.shutdown({ timeout: 500 });
    upstream.closeAllConnections();
    await close(upstream);
  }
});

test.run();
