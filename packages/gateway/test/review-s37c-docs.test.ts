// Review s37c (docs vs code): the gateway README's config table says `routes[].websocket` takes
// "`websocket()` options" and `routes[].cookies` "`cookies()` options"; these tests hold the config
// schema to the option tables of @relay/ws and @relay/cookies for the options a file can express
// (numbers, booleans, strings: no functions), and check that the option reaches the stage.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateConfig, type ConfigError } from '../src/index.js';

const issues = (route: object): string[] => {
  try {
    validateConfig({ listen: [{ port: 1 }], routes: [{ upstream: 'http://127.0.0.1:9', ...route }] }, 'g.json');
  } catch (error) {
    return (error as ConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
  }
  return [];
};

test('config: websocket: { maxFragments } is accepted, as websocket() takes it (gateway README: "`websocket()` options")', () => {
  // packages/ws/README.md options table: `maxFragments` | `100000` | terminating sessions: most fragments in one message.
  // packages/gateway/README.md: routes[].websocket | `true`, `false` or `websocket()` options.
  assert.equal(issues({ websocket: { maxFragments: 1000 } }), []);
});

test('config: websocket: { limits } (numbers only) is accepted, as websocket() takes it', () => {
  // packages/ws/README.md: `limits` | `{ client?, upstream?, session? }`, each `{ maxMessageBytes?, messagesPerSecond?, burst… }`:
  // plain data a config file can say, like `idleTimeout`; refusing it leaves per-message limits code-only, undocumented.
  assert.equal(issues({ websocket: { limits: { client: { maxMessageBytes: 65536 } } } }), []);
});

test('config: cookies.sameSite is accepted in any case, as cookies() takes it (cookies README: "(any case)")', () => {
  // packages/cookies/README.md: `sameSite` | `'Strict' | 'Lax' | 'None'` (any case); cookies({ sameSite: 'LAX' }) works in code.
  // The gateway schema's enum lists only Strict/Lax/None/strict/lax/none, so `sameSite: LAX` is a config error.
  assert.equal(issues({ cookies: { sameSite: 'LAX' } }), []);
  assert.equal(issues({ cookies: { sameSite: 'STRICT' } }), []);
});

test('config: the documented websocket keys that are accepted stay accepted (regression)', () => {
  assert.equal(issues({ websocket: { maxPayload: 1024, highWaterMark: 65536, idleTimeout: 60000, closeTimeout: 1000, perMessageDeflate: true } }), []);
  assert.equal(issues({ cookies: { sameSite: 'none', secure: true, rewriteDomain: { '*': '' } } }), []);
});

test.run();
