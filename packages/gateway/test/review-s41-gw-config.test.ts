// Review s41 (gateway config, from an operator's side): environment references in flow mappings,
// where each config error points, and what `relay check` lets through.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/index.js';
import { configDir, rejection, runBin } from './bin.js';

const files = configDir();
test.after(() => files.cleanup());

test('a quoted reference in a flow mapping is a number where the key takes only a number: rateLimit.points, websocket.idleTimeout, compress.threshold (docs/gateway.md "unless its key takes only a number or a boolean")', async () => {
  // docs/gateway.md: `listen: [{ port: "${PORT}" }]`, quoted because a flow mapping needs it, is still a port.
  // The same holds for maxRetries in `retry: { … }`; inside keys whose value is a union (true or
  // options, one limit or a list) the quoted number stays a string and the config is refused.
  const path = files.write(
    'flow-numbers.yaml',
    [
      'listen: [{ host: 127.0.0.1, port: "${GW_PORT:-8080}" }]',
      'routes:',
      '  - upstream: http://127.0.0.1:9000',
      '    retry: { maxRetries: "${GW_RETRIES:-2}" }',
      '    rateLimit: { points: "${GW_POINTS:-100}", duration: "${GW_WINDOW:-60000}" }',
      '    websocket: { idleTimeout: "${GW_WS_IDLE:-600000}" }',
      '    compress: { threshold: "${GW_COMPRESS_MIN:-2048}" }',
      '',
    ].join('\n'),
  );
  let loaded;
  try {
    loaded = await loadConfig(path, {});
  } catch (error) {
    assert.unreachable(`refused: ${(error as Error).message}`);
    return;
  }
  const route = loaded.config.routes[0]!;
  assert.is(route.retry!.maxRetries, 2);
  assert.equal(route.rateLimit, { points: 100, duration: 60000 });
  assert.equal(route.websocket, { idleTimeout: 600000 });
  assert.equal(route.compress, { threshold: 2048 });
});

test('a quoted reference for a pool target\'s weight is a number, as in the gateway-balance example with its weight from the environment', async () => {
  // docs/gateway.md "Several upstreams": `- { url: "${API_3:-http://10.0.0.3:8000}", weight: 2 }`.
  // An operator who reads the weight from the environment too must quote it in the flow mapping.
  const path = files.write(
    'flow-weight.yaml',
    [
      'listen: [{ port: 0 }]',
      'routes:',
      '  - name: api',
      '    upstream:',
      '      - ${API_1:-http://10.0.0.1:8000}',
      '      - { url: "${API_3:-http://10.0.0.3:8000}", weight: "${API_3_WEIGHT:-2}" }',
      '',
    ].join('\n'),
  );
  let loaded;
  try {
    loaded = await loadConfig(path, {});
  } catch (error) {
    assert.unreachable(`refused: ${(error as Error).message}`);
    return;
  }
  assert.equal(loaded.config.routes[0]!.upstream, ['http://10.0.0.1:8000', { url: 'http://10.0.0.3:8000', weight: 2 }]);
});

test('relay check: a pool target with credentials is refused at routes[0].upstream[1] with its line, not at routes[0].balance (a key the file does not have) without a line', async () => {
  // docs/gateway.md "Validation": every problem is one line: the file, the line, the path in the document.
  // A single upstream with credentials is reported as `g.yaml:3: routes[0].upstream: …`; in a list it
  // comes out as `g.yaml: routes[0].balance: balance: targets[1]: …`.
  const path = files.write(
    'pool-credentials.yaml',
    ['listen: [{ port: 0 }]', 'routes:', '  - upstream:', '      - http://10.0.0.1:8000', '      - http://deploy:hunter2@10.0.0.2:8000', ''].join('\n'),
  );
  const result = await runBin(['check', path]);
  assert.is(result.code, 2, result.stderr);
  assert.not.match(result.stderr, /hunter2/);
  assert.match(result.stderr, /pool-credentials\.yaml:5: routes\[0\]\.upstream\[1\]/, result.stderr);
});

test('a top-level required key left out (routes) names the line of the document it is missing from, as a nested one does', async () => {
  // docs/gateway.md "Validation": "a required key left out is at the line of the object it is missing from".
  // `routes[1].upstream` left out names its route's line; `routes` left out names no line at all.
  const path = files.write('no-routes.yaml', ['listen:', '  - port: 0', ''].join('\n'));
  const error = await rejection(loadConfig(path, {}));
  const issue = error.issues.find((one) => one.path === 'routes');
  assert.ok(issue, error.message);
  assert.is(issue!.line, 1, error.message);
  assert.match(error.message, /^no-routes\.yaml:1: routes: /m);
});

test('relay check refuses two listeners on one address and port (a config that can never serve), with exit code 2 and the line; port 0 twice stays allowed', async () => {
  // `relay check` promises to validate the config without starting (issue 19); this one passes it
  // (`ok (1 route, 2 listeners)`) and then `relay serve` fails with EADDRINUSE, exit 1, on any machine.
  const twice = files.write(
    'listen-twice.yaml',
    ['listen:', '  - { host: 127.0.0.1, port: 8089 }', '  - { host: 127.0.0.1, port: 8089 }', 'routes:', '  - upstream: http://127.0.0.1:9', ''].join('\n'),
  );
  const refused = await runBin(['check', twice]);
  assert.is(refused.code, 2, `${refused.stdout}${refused.stderr}`);
  assert.match(refused.stderr, /listen-twice\.yaml:3: listen\[1\]/);
  const zero = files.write('listen-zero.yaml', ['listen:', '  - { host: 127.0.0.1, port: 0 }', '  - { host: 127.0.0.1, port: 0 }', 'routes:', '  - upstream: http://127.0.0.1:9', ''].join('\n'));
  const ok = await runBin(['check', zero]);
  assert.is(ok.code, 0, ok.stderr);
});

test('a config error about a header value read from the environment does not print the value (an API key), only where it came from', async () => {
  // docs/gateway.md: in JSON a whole reference that reads as a number becomes one, so an all-digit
  // API key in `"x-api-key": "${API_KEY}"` is refused; the refusal then prints the key itself on
  // stderr (and, on a reload, into the JSON log): `expected a string or a list, got 918273645012`.
  const path = files.write('secret.json', JSON.stringify({ listen: [{ port: 0 }], routes: [{ upstream: 'http://127.0.0.1:9', headers: { extraRequest: { 'x-api-key': '${API_KEY}' } } }] }));
  const result = await runBin(['check', path], { env: { API_KEY: '918273645012' } });
  assert.is(result.code, 2);
  assert.match(result.stderr, /x-api-key/);
  assert.not.match(result.stderr, /918273645012/);
});

test.run();
