// Review s37c (balance): option checks. A misspelled outlier.errors code silently never matches.
// House rule: unknown names fail at construction, naming the nearest valid one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { optionErrorMessage } from '@relay/testkit';
import { balance } from '../src/index.js';

const T = 'http://127.0.0.1:1';
const cases: Array<[string, () => unknown, RegExp]> = [
  ['outlier.errors with a misspelled RelayError code', () => balance({ targets: [T], outlier: { errors: ['ERR_UPSTREAM_UNREACHBLE' as never] } }), /outlier\.errors[^]*ERR_UPSTREAM_UNREACHABLE/],
  ['outlier.errors with an unknown code', () => balance({ targets: [T], outlier: { errors: ['ERR_NOPE' as never] } }), /outlier\.errors/],
];
for (const [name, build, message] of cases) {
  test(`${name} throws naming the option (and the nearest code)`, () => {
    assert.match(optionErrorMessage(build), message);
  });
}
test.run();
