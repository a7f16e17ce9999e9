// Review s37c (routing): when()/routes() conditions. A method that is not an HTTP token (RFC 9110 §9.1,
// tchar) can never match a request: it should fail at startup, not route nothing silently.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { optionErrorMessage } from '@relay/testkit';
import type { Stage } from '@relay/core';
import { when } from '../src/index.js';

const stage: Stage = { name: 'noop', wrap: (next) => next };
const cases: Array<[string, () => unknown, string]> = [
  ['method "GE T" (space, not a token)', () => when({ method: 'GE T' }, stage), 'method'],
  ['method "/api" (a path in the method slot)', () => when({ method: '/api' }, stage), 'method'],
  ['header with an empty name', () => when({ header: { '': 'x' } }, stage), 'header'],
];
for (const [name, build, option] of cases) {
  test(`${name} throws naming ${option}`, () => {
    assert.match(optionErrorMessage(build), option);
  });
}
test.run();
