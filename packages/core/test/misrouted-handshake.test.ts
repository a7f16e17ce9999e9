// A WebSocket handshake node hands to the request handler (its server has no 'upgrade' listener) reaches
// relay.handle or relay.dispatch: 501 ERR_UPGRADE_UNSUPPORTED, never the plain GET it also is, and a warn line a
// minute at most. Offers that are no WebSocket handshake stay plain requests.
import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type RelayError } from '@relay/core';
import { close, listen, memoryLogger, sendRaw, startUpstream } from '@relay/testkit';

const handshake = (path: string, connection = 'Upgrade', upgrade = 'websocket') =>
  `GET ${path} HTTP/1.1\r\nHost: gw\r\nUpgrade: ${upgrade}\r\nConnection: ${connection}\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

test('a flood of handshakes through relay.handle: each gets 501, one warn line, the rest at debug', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger });
  const server = createServer(relay.handle);
  const port = Number(new URL(await listen(server)).port);
  try {
    for (let round = 0; round < 5; round++) assert.match(await sendRaw(port, handshake('/chat')), /^HTTP\/1\.1 501 /);
    assert.is(upstream.requests.length, 0);
    assert.is(logger.lines.filter((line) => line.level === 'warn').length, 1);
    const quiet = logger.lines.filter((line) => line.level === 'debug' && line.fields.code === 'ERR_UPGRADE_UNSUPPORTED');
    assert.is(quiet.length, 4);
  } finally {
    await close(server);
    await relay.shutdown();
    await upstream.close();
  }
});

test('relay.dispatch given a handshake: 501 to its onError, a warn naming dispatchUpgrade, nothing upstream', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger });
  const handed: RelayError[] = [];
  const server = createServer((req, res) => {
    relay.dispatch(req, res, {
      path: req.url!.slice('/chat'.length),
      mountPath: '/chat',
      onError(error) {
        handed.push(error);
        res.writeHead(error.status, { 'content-type': 'text/plain' }).end('app says no\n');
      },
    });
  });
  const port = Number(new URL(await listen(server)).port);
  try {
    const answer = await sendRaw(port, handshake('/chat/room'));
    assert.match(answer, /^HTTP\/1\.1 501 /);
    assert.match(answer, /app says no/);
    assert.equal(handed.map((error) => error.code), ['ERR_UPGRADE_UNSUPPORTED']);
    assert.is(upstream.requests.length, 0);
    const warn = logger.lines.find((line) => line.level === 'warn')!;
    assert.match(warn.message, /^WebSocket handshake reached relay\.dispatch: .*relay\.dispatchUpgrade/);
  } finally {
    await close(server);
    await relay.shutdown();
    await upstream.close();
  }
});

test('no WebSocket handshake, no refusal: a stray Upgrade that Connection does not list, and an h2c offer, are relayed as plain requests', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger });
  const server = createServer(relay.handle);
  const port = Number(new URL(await listen(server)).port);
  try {
    assert.match(await sendRaw(port, handshake('/stray', 'close')), /^HTTP\/1\.1 200 /);
    assert.match(await sendRaw(port, handshake('/h2c', 'Upgrade, HTTP2-Settings, close', 'h2c')), /^HTTP\/1\.1 200 /);
    assert.equal(upstream.requests.map((request) => [request.url, request.headers.upgrade]), [['/stray', undefined], ['/h2c', undefined]]);
    assert.equal(logger.lines.filter((line) => line.level !== 'debug'), []);
  } finally {
    server.closeAllConnections();
    await close(server);
    await relay.shutdown();
    await upstream.close();
  }
});

test.run();
