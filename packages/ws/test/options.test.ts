import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { websocket, type WebSocketOptions } from '../src/index.js';
import { closeCodeOfError, isSendableCloseCode, relayedCloseCode } from '../src/close-codes.js';
import { parseSubprotocols } from '../src/handshake-headers.js';

test('options are checked when websocket() is called, and errors name the option', () => {
  const bad: Array<[unknown, ErrorConstructor, RegExp]> = [
    [{ maxPayload: -1 }, RangeError, /maxPayload/],
    [{ maxPayload: 1.5 }, RangeError, /maxPayload/],
    [{ maxPayload: '16mb' }, TypeError, /maxPayload/],
    [{ highWaterMark: Infinity }, RangeError, /highWaterMark/],
    [{ idleTimeout: Number.NaN }, TypeError, /idleTimeout/],
    [{ closeTimeout: 0 }, RangeError, /closeTimeout/],
    [{ perMessageDeflate: 'yes' }, TypeError, /perMessageDeflate/],
    [{ maxPayLoad: 10 }, TypeError, /websocket: unknown option "maxPayLoad" \(did you mean "maxPayload"\?/],
    [null, TypeError, /options object/],
  ];
  for (const [options, type, message] of bad) {
    assert.throws(() => websocket(options as WebSocketOptions), (error: Error) => error instanceof type && message.test(error.message), JSON.stringify(options));
  }
  const transport = websocket({ maxPayload: 0, highWaterMark: 0, idleTimeout: 0, closeTimeout: 1, perMessageDeflate: true });
  assert.is(transport.name, 'websocket');
  assert.is(typeof createRelay({ targetBaseUrl: 'http://127.0.0.1:9', websocket: transport }).upgrade, 'function');
});

test('close codes: what may be sent passes, 1005 becomes 1000, a lost connection becomes 1011 (upstream) or 1001 (client)', () => {
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999]) {
    assert.ok(isSendableCloseCode(code), String(code));
    assert.is(relayedCloseCode(code, true), code);
    assert.is(relayedCloseCode(code, false), code);
  }
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) assert.not.ok(isSendableCloseCode(code), String(code));
  assert.is(relayedCloseCode(1005, true), 1000);
  assert.is(relayedCloseCode(1005, false), 1000);
  assert.is(relayedCloseCode(1006, true), 1011);
  assert.is(relayedCloseCode(1006, false), 1001);
  assert.is(relayedCloseCode(1015, true), 1011);
  assert.is(relayedCloseCode(1004, false), 1001);
});

test('protocol errors map to the code ws sent the peer that broke the protocol', () => {
  const withCode = (code: string) => Object.assign(new Error(code), { code });
  assert.is(closeCodeOfError(withCode('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')), 1009);
  assert.is(closeCodeOfError(withCode('WS_ERR_INVALID_UTF8')), 1007);
  assert.is(closeCodeOfError(withCode('WS_ERR_TOO_MANY_BUFFERED_PARTS')), 1008);
  assert.is(closeCodeOfError(withCode('WS_ERR_INVALID_OPCODE')), 1002);
  assert.is(closeCodeOfError(withCode('EPIPE')), 1011);
  assert.is(closeCodeOfError(new Error('no code')), 1011);
});

test('Sec-WebSocket-Protocol is parsed as ws parses it: tokens, optional spaces, no duplicates, no empty items', () => {
  assert.equal(parseSubprotocols(undefined), []);
  assert.equal(parseSubprotocols('chat'), ['chat']);
  assert.equal(parseSubprotocols('v2.chat, v1.chat'), ['v2.chat', 'v1.chat']);
  assert.equal(parseSubprotocols(['a', 'b,c']), ['a', 'b', 'c']);
  for (const bad of ['', 'a,,b', 'a, a', 'a b', 'a;b', 'chat,']) assert.throws(() => parseSubprotocols(bad), SyntaxError, bad);
});

test.run();
