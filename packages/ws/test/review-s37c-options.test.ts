// Review s37c (ws): option checks (idleTimeout/closeTimeout beyond 2^31 ms checked: fine, chained/capped).
// limits.*.burst (a message count) accepts fractions while rateLimit's burst rejects them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { websocket } from '../src/index.js';

const cases: Array<[string, () => unknown, string]> = [
  ['limits.client.burst 1.5 (not a whole message count)', () => websocket({ limits: { client: { messagesPerSecond: 1, burst: 1.5 } } }), 'burst'],
];
for (const [name, build, option] of cases) {
  test(`${name} throws naming ${option}`, () => {
    let error: unknown;
    try {
      build();
    } catch (caught) {
      error = caught;
    }
    assert.ok(error instanceof TypeError || error instanceof RangeError, `no error for ${name}`);
    assert.match((error as Error).message, option);
  });
}
test.run();
