// Issue 13: the transports' options objects reject unknown keys, naming the key and the nearest valid one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { httpTransport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';

function message(build: () => unknown): string {
  try {
    build();
  } catch (error) {
    assert.instance(error, TypeError);
    return (error as Error).message;
  }
  assert.unreachable('accepted an unknown option');
  return '';
}

test('httpTransport: a misspelled key is refused with the nearest valid one', () => {
  assert.match(message(() => httpTransport({ maxSocket: 8 } as never)), /^httpTransport: unknown option "maxSocket" \(did you mean "maxSockets"\? expected one of /);
  assert.match(message(() => httpTransport({ idletimeout: 1 } as never)), /"idletimeout" \(did you mean "idleTimeout"\?/);
});

test('gotTransport: a misspelled key is refused with the nearest valid one', () => {
  assert.match(message(() => gotTransport({ dnscache: true } as never)), /^gotTransport: unknown option "dnscache" \(did you mean "dnsCache"\? expected one of /);
  assert.match(message(() => gotTransport({ hook: {} } as never)), /"hook" \(did you mean "hooks"\?/);
});

test('known keys are still accepted', () => {
  httpTransport({ maxSockets: 8, maxFreeSockets: 4, idleTimeout: 1_000 });
  gotTransport({ maxSockets: 8, maxFreeSockets: 4, idleTimeout: 1_000, dnsCache: false, hooks: {} });
});

test.run();
