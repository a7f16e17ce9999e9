// websocket()'s nested limits reject an unknown key with a TypeError naming the nearest valid one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { websocket, type WebSocketOptions } from '../src/index.js';

const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`unknown option "${key}"`) && error.message.includes(`did you mean "${nearest}"`);

test('limits: { clinet } names "client"', () => {
  assert.throws(() => websocket({ limits: { clinet: {} } } as unknown as WebSocketOptions), unknownKey('clinet', 'client'));
});

test('limits.upstream: { burts } names "burst"', () => {
  assert.throws(
    () => websocket({ limits: { upstream: { messagesPerSecond: 10, burts: 20 } } } as unknown as WebSocketOptions),
    (error: Error) => unknownKey('burts', 'burst')(error) && error.message.startsWith('websocket: limits.upstream: '),
  );
});

test.run();
