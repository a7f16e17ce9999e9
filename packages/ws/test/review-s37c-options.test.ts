// Review s37c (ws): option checks (idleTimeout/closeTimeout beyond 2^31 ms checked: fine, chained/capped).
// limits.*.burst (a message count) accepts fractions while rateLimit's burst rejects them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { optionErrorMessage } from '@relay/testkit';
import { websocket } from '../src/index.js';

const cases: Array<[string, () => unknown, string]> = [
  ['limits.client.burst 1.5 (not a whole message count)', () => websocket({ limits: { client: { messagesPerSecond: 1, burst: 1.5 } } }), 'burst'],
];
for (const [name, build, option] of cases) {
  test(`${name} throws naming ${option}`, () => {
    assert.match(optionErrorMessage(build), option);
  });
}
test.run();
