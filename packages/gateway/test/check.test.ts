// `relay check` and config errors, through the real bin: exit codes and the exact messages.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configDir, runBin } from './bin.js';

const files = configDir();
test.after(() => files.cleanup());

test('check: a valid config exits 0 and says what it found', async () => {
  const path = files.write(
    'good.yaml',
    ['listen:', '  - { host: 127.0.0.1, port: 8080 }', 'routes:', '  - match: { path: /api }', '    upstream: http://127.0.0.1:9000', ''].join('\n'),
  );
  const result = await runBin(['check', path]);
  assert.is(result.code, 0, result.stderr);
  assert.is(result.stdout, `${path}: ok (1 route, 1 listener)\n`);
});

test('check: a broken config exits 2 with the file, line, document path and what was expected', async () => {
  const path = files.write(
    'broken.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 8080 }',
      'routes:',
      '  - match: { path: /a }',
      '    upstream: http://127.0.0.1:9000',
      '  - match: { path: /b }',
      '    upstream: http://127.0.0.1:9001',
      '  - match: { path: /c }',
      '    upstream: ftp://files.internal',
      '    retry: { maxRetry: 3 }',
      '',
    ].join('\n'),
  );
  const result = await runBin(['check', path]);
  assert.is(result.code, 2);
  assert.is(result.stdout, '');
  assert.is(
    result.stderr,
    `${path}:9: routes[2].upstream: expected an absolute http:// or https:// URL, got "ftp://files.internal"\n` +
      `${path}:10: routes[2].retry.maxRetry: unknown key "maxRetry" (did you mean "maxRetries"?)\n`,
  );
});

test('check: missing required keys, wrong types and unknown top-level keys', async () => {
  const path = files.write('types.yaml', ['listen:', '  - { port: "eighty" }', 'route: []', ''].join('\n'));
  const result = await runBin(['check', path]);
  assert.is(result.code, 2);
  assert.is(
    result.stderr,
    `${path}:2: listen[0].port: expected a port number, got "eighty"\n` +
      `${path}:3: route: unknown key "route" (did you mean "routes"?)\n` +
      `${path}: routes: required: expected an array\n`,
  );
});

test('check: a stage factory refusing its options is a config error at that key', async () => {
  const path = files.write(
    'factory.json',
    JSON.stringify({ listen: [{ port: 8080 }], routes: [{ upstream: 'http://127.0.0.1:9000', headers: { extraRequest: { 'bad header': 'x' } } }] }),
  );
  const result = await runBin(['check', path]);
  assert.is(result.code, 2);
  assert.match(result.stderr, new RegExp(`^${path}: routes\\[0\\]\\.headers: .*bad header`));
});

test('check: a YAML syntax error names the line', async () => {
  const path = files.write('syntax.yaml', 'listen:\n  - { port: 8080\nroutes: []\n');
  const result = await runBin(['check', path]);
  assert.is(result.code, 2);
  assert.match(result.stderr, new RegExp(`^${path}:\\d+: `));
});

test('check: an unset environment variable without a default is named', async () => {
  const path = files.write('env.yaml', ['listen: [{ port: 8080 }]', 'routes:', '  - upstream: ${NO_SUCH_RELAY_VAR}', ''].join('\n'));
  const result = await runBin(['check', path], { env: { NO_SUCH_RELAY_VAR: '' } });
  assert.is(result.code, 2);
  assert.is(result.stderr, `${path}: routes[0].upstream: environment variable NO_SUCH_RELAY_VAR is not set (write \${NO_SUCH_RELAY_VAR:-default} for a default)\n`);
});

test('check: a missing file, a missing TLS file', async () => {
  const path = files.write('tls.yaml', ['listen:', '  - { port: 8443, tls: { cert: cert.pem, key: key.pem } }', 'routes:', '  - upstream: http://127.0.0.1:9000', ''].join('\n'));
  const [missing, tls] = await Promise.all([runBin(['check', `${files.dir}/nope.yaml`]), runBin(['check', path])]);
  assert.is(missing.code, 2);
  assert.is(missing.stderr, `${files.dir}/nope.yaml: no such file\n`);
  assert.is(tls.code, 2);
  assert.is(tls.stderr, `${path}: listen[0].tls.cert: no such file: cert.pem\n`);
});

test('usage errors exit 2; --help and --version exit 0', async () => {
  // Independent runs, side by side: each start compiles the sources, which is most of the time here.
  const [unknown, badPort, help, version] = await Promise.all([
    runBin(['serve', '--prot', '8080']),
    runBin(['serve', 'x.yaml', '--port', '99999']),
    runBin(['--help']),
    runBin(['--version']),
  ]);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /^relay: Unknown option '--prot'/);
  assert.is(badPort.code, 2);
  assert.match(badPort.stderr, /--port must be a port number from 0 to 65535, got "99999"/);
  assert.is(help.code, 0);
  assert.match(help.stdout, /Exit codes: 0 ok, 1 runtime error/);
  assert.is(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

test.run();
