// Review s37c (core): option checks at construction — tls value types, slowClientTimeout's timer limit, integer counts.
// House rule: "bad input gets a clear error", naming the option, when the relay/transport is built.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { optionErrorMessage } from '@relay/testkit';
import { createRelay, httpTransport } from '../src/index.js';

const T = 'http://127.0.0.1:1';
const cases: Array<[string, () => unknown, string]> = [
  // node:tls takes ca/cert/key/pfx as string|Buffer|array, passphrase/servername as non-empty strings
  ['tls.ca a number', () => createRelay({ targetBaseUrl: T, tls: { ca: 5 as never } }), 'tls.ca'],
  ['tls.cert a number', () => createRelay({ targetBaseUrl: T, tls: { cert: 5 as never } }), 'tls.cert'],
  ['tls.passphrase a number', () => createRelay({ targetBaseUrl: T, tls: { passphrase: 5 as never } }), 'tls.passphrase'],
  ['tls.servername empty', () => createRelay({ targetBaseUrl: T, tls: { servername: '' } }), 'tls.servername'],
  // slowClientTimeout is armed with setTimeout(): beyond 2^31-1 ms node fires it after 1 ms and cuts every
  // paused download at once (pingInterval and timeout.* already use assertTimeout)
  ['slowClientTimeout beyond the timer limit', () => httpTransport({ slowClientTimeout: 2 ** 31 }), 'slowClientTimeout'],
  // counts are whole numbers (http2Transport's maxSessions already says so)
  ['maxSockets 1.5', () => httpTransport({ maxSockets: 1.5 }), 'maxSockets'],
  ['maxFreeSockets 1.5', () => httpTransport({ maxFreeSockets: 1.5 }), 'maxFreeSockets'],
];
for (const [name, build, option] of cases) {
  test(`${name} throws a TypeError/RangeError naming ${option} at construction`, () => {
    assert.match(optionErrorMessage(build), option);
  });
}
test.run();
