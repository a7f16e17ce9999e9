import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, httpTransport, type Logger } from '../src/index.js';
import { resolveTimeouts } from '../src/options.js';

const named = (kind: ErrorConstructor, option: string) => (error: Error) => error instanceof kind && error.message.includes(option);

test('a bad targetBaseUrl throws a TypeError naming it', () => {
  for (const bad of ['', 'not a url', 'ftp://host', 'auth:8000', '/relative', 'http://user:pw@host', 'http://host/?q=1']) {
    assert.throws(() => createRelay({ targetBaseUrl: bad }), named(TypeError, 'targetBaseUrl'), bad);
  }
  assert.throws(() => createRelay({} as never), named(TypeError, 'targetBaseUrl'));
});

test('a negative or non-numeric timeout throws, naming the option', () => {
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', timeout: -1 }), named(RangeError, 'timeout'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', timeout: { read: -5 } }), named(RangeError, 'timeout.read'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', timeout: { connect: Infinity } }), named(RangeError, 'timeout.connect'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', timeout: { reed: 5 } as never }), named(TypeError, 'timeout: unknown option "reed" (did you mean "read"'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', timeout: '5s' as never }), named(TypeError, 'timeout'));
});

test('timeouts default to connect 5 s, read 30 s, write 30 s, pool 10 s; one number sets every phase', () => {
  assert.equal(resolveTimeouts(undefined), { connect: 5000, read: 30000, write: 30000, pool: 10000 });
  assert.equal(resolveTimeouts({ read: 100 }), { connect: 5000, read: 100, write: 30000, pool: 10000 });
  assert.equal(resolveTimeouts(250), { connect: 250, read: 250, write: 250, pool: 250 });
  assert.equal(createRelay({ targetBaseUrl: 'http://h', timeout: { pool: 0 } }).timeouts.pool, 0);
});

test('other options are checked when the relay is built', () => {
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', mountPath: 'auth' }), named(TypeError, 'mountPath'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', upstreamPrefix: '/a/../b' }), named(TypeError, 'upstreamPrefix'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', preserveHost: 'yes' as never }), named(TypeError, 'preserveHost'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', logger: { info() {} } as unknown as Logger }), named(TypeError, 'logger'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', transport: {} as never }), named(TypeError, 'transport'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', shutdownTimeout: -1 }), named(RangeError, 'shutdownTimeout'));
  assert.throws(() => createRelay({ targetBaseUrl: 'https://h', tls: { rejectUnauthorized: 'no' } as never }), named(TypeError, 'tls.rejectUnauthorized'));
  assert.throws(() => httpTransport({ maxSockets: 0 }), named(RangeError, 'maxSockets'));
  assert.throws(() => httpTransport({ idleTimeout: -1 }), named(RangeError, 'idleTimeout'));
});

test('the target is parsed once: host, port, base path', () => {
  const relay = createRelay({ targetBaseUrl: 'https://api.internal/base/', upstreamPrefix: '/v2/' });
  assert.equal({ ...relay.target }, {
    protocol: 'https:',
    hostname: 'api.internal',
    port: 443,
    host: 'api.internal',
    origin: 'https://api.internal',
    basePath: '/base/v2',
  });
  const ipv6 = createRelay({ targetBaseUrl: 'http://[::1]:8080' });
  assert.is(ipv6.target.hostname, '::1');
  assert.is(ipv6.target.host, '[::1]:8080');
});

test.run();
