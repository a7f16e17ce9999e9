// The options objects of @relay/connect-adapter reject an unknown key with a TypeError naming the nearest valid one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:http';
import { createRelay } from '@relay/core';
import { relayLifecycle, toConnect, type ConnectOptions, type LifecycleRelay } from '../src/index.js';

const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`unknown option "${key}"`) && error.message.includes(`did you mean "${nearest}"`);

test('toConnect(relay, { error }) names "errors"', () => {
  const relay = createRelay({ targetBaseUrl: 'http://127.0.0.1:9' });
  assert.throws(() => toConnect(relay, { error: 'next' } as unknown as ConnectOptions), unknownKey('error', 'errors'));
});

/** A relay as relayLifecycle sees it (structurally), recording the shutdown options it gets. */
function fakeRelay(calls: unknown[]): LifecycleRelay {
  return { startup: async () => {}, shutdown: async (options) => void calls.push(options) };
}

test('relayLifecycle shutdown({ timout }) rejects naming "timeout", before any relay is shut down', async () => {
  const calls: unknown[] = [];
  const lifecycle = relayLifecycle([fakeRelay(calls)]);
  await lifecycle.shutdown({ timout: 0 } as never).then(
    () => assert.unreachable('accepted { timout }'),
    (error: Error) => assert.ok(unknownKey('timout', 'timeout')(error), error.message),
  );
  await lifecycle.shutdown(5 as never).then(
    () => assert.unreachable('accepted a number'),
    (error: Error) => assert.ok(error instanceof TypeError && /needs an options object/.test(error.message), error.message),
  );
  assert.equal(calls, []);
});

test('relayLifecycle close(server, { timout }) rejects naming "timeout", and leaves the server listening', async () => {
  const calls: unknown[] = [];
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await relayLifecycle([fakeRelay(calls)]).close(server, { timout: 0 } as never).then(
      () => assert.unreachable('accepted { timout }'),
      (error: Error) => assert.ok(unknownKey('timout', 'timeout')(error), error.message),
    );
    assert.ok(server.listening);
    assert.equal(calls, []);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test.run();
