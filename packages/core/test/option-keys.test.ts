// Every options object of @relay/core, nested ones and per-call ones included, rejects an unknown
// key with a TypeError naming the nearest valid one; a non-object where one is expected is a TypeError too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { gotTransport, type GotTransportOptions } from '../src/transport/got.js';
import { createRelay, RelayError, stageContext } from '../src/index.js';

/** A TypeError whose message names `key` as unknown and `nearest` as the likely meaning. */
const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`unknown option "${key}"`) && error.message.includes(`did you mean "${nearest}"`);

const relay = () => createRelay({ targetBaseUrl: 'http://127.0.0.1:9' });

test('timeout: { conect } names "connect", in createRelay and stageContext', () => {
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', timeout: { conect: 5 } as never }), unknownKey('conect', 'connect'));
  assert.throws(() => stageContext({ timeouts: { reed: 5 } as never }), unknownKey('reed', 'read'));
});

test('relay.shutdown({ timout }) throws naming "timeout", and leaves the relay as it was', async () => {
  const r = relay();
  await r.startup();
  assert.throws(() => r.shutdown({ timout: 0 } as never), unknownKey('timout', 'timeout'));
  assert.throws(() => r.shutdown(5 as never), (error: Error) => error instanceof TypeError && /shutdown\(options\)/.test(error.message));
  assert.is(r.state, 'running');
  await r.shutdown({ timeout: 0 });
});

test('relay.fetch(request, { adress }) throws naming "address"; a non-object client is a TypeError', () => {
  const r = relay();
  assert.throws(() => r.fetch(new Request('http://gw/'), { adress: '10.0.0.1' } as never), unknownKey('adress', 'address'));
  assert.throws(() => r.fetch(new Request('http://gw/'), '10.0.0.1' as never), (error: Error) => error instanceof TypeError && /client must be an object/.test(error.message));
});

test('relay.dispatch and dispatchUpgrade: a misspelled route key names the nearest one', () => {
  const r = relay();
  const req = {} as IncomingMessage;
  assert.throws(() => r.dispatch(req, {} as ServerResponse, { path: '/', mountPath: '', onEror: () => {} } as never), unknownKey('onEror', 'onError'));
  assert.throws(() => r.dispatchUpgrade(req, {} as Duplex, Buffer.alloc(0), { path: '/', mountPath: '', originalURL: '/' } as never), unknownKey('originalURL', 'originalUrl'));
  assert.throws(() => r.dispatch(req, {} as ServerResponse, null as never), (error: Error) => error instanceof TypeError && /route must be an object/.test(error.message));
});

test('gotTransport: a misspelled hook names the nearest usable one; a real got hook still says it never runs', () => {
  assert.throws(() => gotTransport({ hooks: { beforeRequst: [] } } as unknown as GotTransportOptions), unknownKey('beforeRequst', 'beforeRequest'));
  assert.throws(() => gotTransport({ hooks: { beforeRetry: [] } } as unknown as GotTransportOptions), /hooks\.beforeRetry never runs/);
});

test('stageContext: a non-object is a TypeError', () => {
  assert.throws(() => stageContext(5 as never), (error: Error) => error instanceof TypeError && /stageContext\(overrides\)/.test(error.message));
  assert.throws(() => stageContext(null as never), (error: Error) => error instanceof TypeError && /stageContext\(overrides\)/.test(error.message));
});

test('new RelayError(code, message, { casue }) names "cause"', () => {
  assert.throws(() => new RelayError('ERR_READ_TIMEOUT', 'slow', { casue: new Error('x') } as never), unknownKey('casue', 'cause'));
  assert.throws(() => new RelayError('ERR_READ_TIMEOUT', 'slow', 'x' as never), TypeError);
  assert.instance(new RelayError('ERR_READ_TIMEOUT', 'slow', { cause: 1, headers: { 'x-a': 'b' } }), RelayError);
});

test.run();
