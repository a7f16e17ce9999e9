// A WebSocket handshake that reaches a relay the "wrong" way (review s40, new user): through relay.handle on a server
// without an 'upgrade' listener, or malformed by its client.
import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { close, listen, memoryLogger, sendRaw } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { startGateway, startWsUpstream } from './helpers.js';

const handshake = (path: string, key = 'dGhlIHNhbXBsZSBub25jZQ==') =>
  `GET ${path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

// The README's Quick Start serves a relay with `http.createServer(relay.handle)` and no 'upgrade' listener: node then
// emits the handshake as a plain request. Relayed as a plain GET (Upgrade stripped), the client got whatever the
// upstream answers a GET, and nobody saw why; docs/configuration.md promises 501 without `websocket`.
test('relay.handle given a WebSocket handshake (server without an upgrade listener): 501, nothing upstream, a warn naming the fix', async () => {
  for (const ws of [undefined, websocket()]) {
    const seen: string[] = [];
    const upstream = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} upgrade=${String(req.headers.upgrade)}`);
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end('upstream answered a plain GET\n');
    });
    const upstreamUrl = await listen(upstream);
    const logger = memoryLogger();
    const relay = createRelay({ targetBaseUrl: upstreamUrl, websocket: ws, logger });
    const server = createServer(relay.handle); // README.md "Quick Start": no server.on('upgrade', relay.upgrade)
    const url = await listen(server);
    const label = ws ? 'with websocket()' : 'without websocket';
    try {
      const answer = await sendRaw(Number(new URL(url).port), handshake('/room?token=secret'));
      assert.equal(seen, [], `${label}: the handshake reached the upstream as a plain request: ${seen.join(', ')}`);
      assert.match(answer, /^HTTP\/1\.1 501 /, `${label}: ${answer.split('\r\n')[0]}`);
      assert.match(answer, /ERR_UPGRADE_UNSUPPORTED/);
      assert.match(answer, /\r\nConnection: close\r\n/i, `${label}: the connection is closed, as relay.upgrade's 501`);
      const warns = logger.lines.filter((line) => line.level === 'warn');
      assert.is(warns.length, 1, `${label}: one warn line`);
      assert.ok(warns[0]!.message.startsWith("WebSocket handshake reached relay.handle: add server.on('upgrade', relay.upgrade)"), warns[0]!.message);
      assert.is(warns[0]!.message.includes('websocket()'), ws === undefined, `${label}: the transport is named only when it is missing`);
      assert.equal(warns[0]!.fields, { method: 'GET', path: '/room', code: 'ERR_UPGRADE_UNSUPPORTED' });
    } finally {
      server.closeAllConnections();
      await close(server);
      await relay.shutdown();
      upstream.closeAllConnections();
      await close(upstream);
    }
  }
});

// A malformed client handshake is a 400 ERR_BAD_HANDSHAKE and the upstream is never contacted (docs/websocket.md);
// logged as `upstream request failed` with the upstream url and attempt, an operator read it as the chat service
// failing, and a gateway counted it against its target's health (a warn line with `attempt` and `code`).
test('a malformed client handshake is logged as the client\'s fault: info, method and path, no upstream url or attempt', async () => {
  const upstream = await startWsUpstream();
  const logger = memoryLogger();
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(), logger });
  try {
    const answer = await sendRaw(gateway.port, handshake('/lobby?token=secret', 'abc'));
    assert.ok(answer.startsWith('HTTP/1.1 400'), answer);
    assert.match(answer, /ERR_BAD_HANDSHAKE/);
    assert.is(upstream.handshakes.length, 0);
    const blamed = logger.lines.filter((line) => line.message === 'upstream request failed');
    assert.equal(blamed.map((line) => line.fields.code), [], 'a client error is logged as an upstream failure');
    const refused = logger.lines.filter((line) => line.fields.code === 'ERR_BAD_HANDSHAKE');
    assert.is(refused.length, 1);
    assert.is(refused[0]!.level, 'info');
    assert.is(refused[0]!.message, 'bad WebSocket handshake from client');
    assert.equal(Object.keys(refused[0]!.fields).sort(), ['code', 'error', 'method', 'path']);
    assert.is(refused[0]!.fields.path, '/lobby');
    assert.match(String(refused[0]!.fields.error), /Sec-WebSocket-Key/);
  } finally {
    await gateway.close();
    await upstream.close();
  }
});

test.run();
