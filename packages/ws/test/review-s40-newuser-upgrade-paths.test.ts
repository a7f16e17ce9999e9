// Review s40 (new user): what a user meets when a WebSocket handshake reaches a relay the "wrong" way.
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

// docs/configuration.md:50 `websocket` ... "without it upgrades get 501"; docs/error-handling.md:77
// ERR_UPGRADE_UNSUPPORTED 501 "a WebSocket upgrade on a relay without websocket". The README's Quick Start serves a
// relay with `http.createServer(relay.handle)` and no 'upgrade' listener: node then emits the handshake as a plain
// request, and relay.handle strips Upgrade/Connection and relays it as a plain GET, silently (no log line).
test('relay.handle given a WebSocket handshake (server without an upgrade listener) does not relay it as a plain GET', async () => {
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
    const answer = await sendRaw(Number(new URL(url).port), handshake('/room'));
    const label = ws ? 'with websocket()' : 'without websocket';
    try {
    assert.equal(seen, [], `${label}: the handshake reached the upstream as a plain request: ${seen.join(', ')}`);
    assert.ok(/^HTTP\/1\.1 50[01]/.test(answer), `${label}: expected a 501/500 naming the missing upgrade listener, got ${answer.split('\r\n')[0]}`);
    assert.ok(logger.lines.some((line) => line.level !== 'debug'), `${label}: the misconfiguration is not logged`);
    } finally {
    server.closeAllConnections();
    await close(server);
    await relay.shutdown();
    upstream.closeAllConnections();
    await close(upstream);
    }
  }
});

// docs/logging.md:70: `upstream request failed` is "an attempt failed before its response head (502 family)", with the
// upstream `url` and `attempt`; docs/websocket.md:159 and reliability.md:75: a malformed client handshake is a 400
// ERR_BAD_HANDSHAKE and "the upstream is never contacted". The demo's log shows a client's bad Sec-WebSocket-Key as
// `[relay] upstream request failed {"url":"http://127.0.0.1:35843/lobby","attempt":1,"code":"ERR_BAD_HANDSHAKE"}`:
// an operator reads it as the chat service failing.
test('a malformed client handshake is not logged as "upstream request failed"', async () => {
  const upstream = await startWsUpstream();
  const logger = memoryLogger();
  const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(), logger });
  const answer = await sendRaw(gateway.port, handshake('/lobby', 'abc'));
  try {
  assert.ok(answer.startsWith('HTTP/1.1 400'), answer);
  assert.is(upstream.handshakes.length, 0);
  const blamed = logger.lines.filter((line) => line.message === 'upstream request failed');
  assert.equal(blamed.map((line) => line.fields.code), [], 'a client error is logged as an upstream failure');
  } finally {
  await gateway.close();
  await upstream.close();
  }
});

test.run();
