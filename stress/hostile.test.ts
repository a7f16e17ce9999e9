// Hostile input that needs more than core: header-stage headers a client tries to strip, and
// secrets on WebSocket error paths.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { headers } from '@relay/headers';
import { closedPort, fetchRaw, memoryLogger, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { websocket } from '@relay/ws';

test("a Connection header listing the relay's own headers (X-Forwarded-*, a header stage's extra header) strips none of them", async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', stages: [headers({ extraRequest: { 'x-service-auth': 'service-token' } })] }),
  );
  const response = await fetchRaw(`${served.url}/api/who`, {
    headers: { connection: 'keep-alive, X-Service-Auth, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Prefix', 'x-service-auth': 'forged' },
  });
  const seen = JSON.parse(response.text) as { headers: Record<string, string> };
  assert.is(seen.headers['x-service-auth'], 'service-token', 'the stage header is set, the forged one replaced');
  assert.is(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.is(seen.headers['x-forwarded-proto'], 'http');
  assert.is(seen.headers['x-forwarded-prefix'], '/api');
  assert.ok(seen.headers['x-forwarded-host']);
  await served.close();
  await upstream.close();
});

test('WebSocket error paths carry no Authorization or Cookie value and no internal address', async () => {
  const logger = memoryLogger();
  const port = await closedPort();
  const relay = createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, websocket: websocket(), logger });
  const served = await serveRelay(relay);
  served.server.on('upgrade', relay.upgrade);
  const handshake =
    'GET /chat HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    'Sec-WebSocket-Version: 13\r\nAuthorization: Bearer SECRET-TOKEN-123\r\nCookie: sid=SECRET-COOKIE-456\r\n\r\n';
  const refused = await sendRaw(served.port, handshake);
  assert.match(refused, /^HTTP\/1.1 502 /);
  const malformed = await sendRaw(served.port, handshake.replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 99'));
  assert.match(malformed, /^HTTP\/1.1 4\d\d /);
  for (const text of [refused, malformed, JSON.stringify(logger.lines)]) {
    assert.not.ok(text.includes('SECRET-TOKEN-123'), 'no authorization value');
    assert.not.ok(text.includes('SECRET-COOKIE-456'), 'no cookie value');
  }
  for (const text of [refused, malformed]) assert.not.ok(text.includes(String(port)), 'no internal port in an answer');
  await served.close();
});

test.run();
