// A config error about a value read from the environment names the reference it came from, never
// the value: it may be a secret (an API key), and the error goes to stderr and, on a reload, the log.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadConfig } from '../src/index.js';
import { configDir, rejection, runBin } from './bin.js';

const files = configDir();
test.after(() => files.cleanup());

test('relay check: a header value read from the environment and refused does not print the value (an API key), only where it came from', async () => {
  // docs/gateway.md: in JSON a whole reference that reads as a number becomes one, so an all-digit
  // API key in `"x-api-key": "${API_KEY}"` is refused; the refusal used to print the key itself.
  const path = files.write('secret.json', JSON.stringify({ listen: [{ port: 0 }], routes: [{ upstream: 'http://127.0.0.1:9', headers: { extraRequest: { 'x-api-key': '${API_KEY}' } } }] }));
  const result = await runBin(['check', path], { env: { API_KEY: '918273645012' } });
  assert.is(result.code, 2);
  assert.match(result.stderr, /x-api-key/);
  assert.not.match(result.stderr, /918273645012/);
  assert.match(result.stderr, /routes\[0\]\.headers\.extraRequest\.x-api-key: expected a string or a list, got a number from \$\{API_KEY\}/);
});

test('a refusal of a value with a reference in it names the text it was read from; a value written in the file is still shown', async () => {
  const path = files.write(
    'partial.yaml',
    ['listen: [{ port: 0 }]', 'routes:', '  - upstream: http://127.0.0.1:9', '    match: { host: "tenant-${TENANT}:8443" }', '    headers: { via: 17 }', ''].join('\n'),
  );
  const error = await rejection(loadConfig(path, { TENANT: 'k7Qx-secret' }));
  assert.not.match(error.message, /k7Qx-secret/);
  assert.equal(
    error.issues.map((issue) => `${issue.line}: ${issue.path}: ${issue.message}`),
    [
      '4: routes[0].match.host: expected a host name such as api.example.com or *.example.com (no port), got a string from "tenant-${TENANT}:8443"',
      '5: routes[0].headers.via: expected a boolean or a string, got 17',
    ],
  );
});

test('a pool target read from the environment and listed twice: the error names the references, not the value', async () => {
  // docs/gateway.md: "A config error about a value read from the environment names the reference, not the value".
  const path = files.write('pool-twice.yaml', ['listen: [{ port: 0 }]', 'routes:', '  - upstream: ["${PRIMARY}", "${SECONDARY}"]', ''].join('\n'));
  const error = await rejection(loadConfig(path, { PRIMARY: 'http://db-7f3k.internal.example:9000', SECONDARY: 'http://db-7f3k.internal.example:9000' }));
  assert.match(error.message, /routes\[0\]\.upstream\[1\]/);
  assert.not.match(error.message, /db-7f3k/);
});

test('two listeners on one address read from the environment: the error names the reference, not the host', async () => {
  const path = files.write(
    'listen-twice.yaml',
    ['listen: [{ host: "${BIND}", port: 8080 }, { host: "${BIND}", port: 8080 }]', 'routes: [{ upstream: http://127.0.0.1:9 }]', ''].join('\n'),
  );
  const error = await rejection(loadConfig(path, { BIND: 'node-q9z2.private.example' }));
  assert.match(error.message, /listen\[1\]/);
  assert.not.match(error.message, /q9z2/);
});

test('an endpoint listener name and a duplicate listener name read from the environment are not echoed in the error', async () => {
  const path = files.write(
    'names.yaml',
    [
      'listen: [{ name: "${LISTENER}", port: 0 }, { name: "${LISTENER}", port: 0 }]',
      'health: { path: /healthz, listeners: ["${HEALTH_ON}"] }',
      'routes: [{ upstream: http://127.0.0.1:9 }]',
      '',
    ].join('\n'),
  );
  const error = await rejection(loadConfig(path, { LISTENER: 'zx81secret', HEALTH_ON: 'qq42secret' }));
  assert.match(error.message, /listen\[1\]\.name/);
  assert.match(error.message, /health\.listeners\[0\]/);
  assert.not.match(error.message, /zx81secret|qq42secret/);
});

test.run();
