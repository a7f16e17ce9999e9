// Where a config error points: every problem names the file, the line and the path in the document
// (docs/gateway.md "Validation"), also for a key the file leaves out and for a pool target.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { issueAt } from '../src/config-error.js';
import { loadConfig } from '../src/index.js';
import { configDir, rejection, runBin } from './bin.js';

const files = configDir();
test.after(() => files.cleanup());

test('relay check: a pool target with credentials is refused at routes[0].upstream[1] with its line, not at routes[0].balance (a key the file does not have) without a line', async () => {
  // A single upstream with credentials is reported as `g.yaml:3: routes[0].upstream: …`; in a list it
  // came out as `g.yaml: routes[0].balance: balance: targets[1]: …`.
  const path = files.write(
    'pool-credentials.yaml',
    ['listen: [{ port: 0 }]', 'routes:', '  - upstream:', '      - http://10.0.0.1:8000', '      - http://deploy:hunter2@10.0.0.2:8000', ''].join('\n'),
  );
  const result = await runBin(['check', path]);
  assert.is(result.code, 2, result.stderr);
  assert.not.match(result.stderr, /hunter2/);
  assert.match(result.stderr, /pool-credentials\.yaml:5: routes\[0\]\.upstream\[1\]: expected no credentials in the URL/, result.stderr);
});

test('a top-level required key left out (routes) names the line of the document it is missing from, as a nested one does', async () => {
  // "a required key left out is at the line of the object it is missing from": the document, for routes.
  const path = files.write('no-routes.yaml', ['listen:', '  - port: 0', ''].join('\n'));
  const error = await rejection(loadConfig(path, {}));
  const issue = error.issues.find((one) => one.path === 'routes');
  assert.ok(issue, error.message);
  assert.is(issue!.line, 1, error.message);
  assert.match(error.message, /(^|\/)no-routes\.yaml:1: routes: /m);
});

test('an issue found after the schema at a key the file leaves out (a stage that builds from defaults) names the line of its nearest parent', () => {
  const lines: Record<string, number> = { '[]': 1, '["routes"]': 3, '["routes",0]': 4 };
  const lineOf = (path: ReadonlyArray<string | number>) => lines[JSON.stringify(path)];
  assert.equal(issueAt(['routes', 0, 'balance'], 'no targets', lineOf), { path: 'routes[0].balance', message: 'no targets', line: 4 });
  assert.equal(issueAt(['redis'], 'cannot connect', lineOf), { path: 'redis', message: 'cannot connect', line: 1 });
  assert.equal(issueAt(['routes', 0], 'refused'), { path: 'routes[0]', message: 'refused' }, 'a module config has no lines');
});

test.run();
