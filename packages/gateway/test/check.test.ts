// `relay check` and config errors, through the real bin: exit codes and the exact messages.
// Every run is queued when the file loads and the tests read their results: each start compiles the
// sources, which is most of the time here, so three run side by side instead of one by one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { configDir, runBin, type BinResult } from './bin.js';

const files = configDir();
test.after(() => files.cleanup());

const good = files.write(
  'good.yaml',
  ['listen:', '  - { host: 127.0.0.1, port: 8080 }', 'routes:', '  - match: { path: /api }', '    upstream: http://127.0.0.1:9000', ''].join('\n'),
);
const broken = files.write(
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
const types = files.write('types.yaml', ['listen:', '  - { port: "eighty" }', 'route: []', ''].join('\n'));
const factory = files.write(
  'factory.json',
  JSON.stringify({ listen: [{ port: 8080 }], routes: [{ upstream: 'http://127.0.0.1:9000', headers: { extraRequest: { 'bad header': 'x' } } }] }),
);
const syntax = files.write('syntax.yaml', 'listen:\n  - { port: 8080\nroutes: []\n');
const env = files.write('env.yaml', ['listen: [{ port: 8080 }]', 'routes:', '  - upstream: ${NO_SUCH_RELAY_VAR}', ''].join('\n'));
const tls = files.write('tls.yaml', ['listen:', '  - { port: 8443, tls: { cert: cert.pem, key: key.pem } }', 'routes:', '  - upstream: http://127.0.0.1:9000', ''].join('\n'));
const missing = `${files.dir}/nope.yaml`;

const queue: Array<() => void> = [];
let running = 0;

/** Runs the bin when one of the three slots is free. */
function queued(args: string[], env: NodeJS.ProcessEnv = {}): Promise<BinResult> {
  return new Promise((resolve) => {
    const start = () => {
      running++;
      void runBin(args, { env, timeoutMs: 90_000 }).then((result) => {
        running--;
        queue.shift()?.();
        resolve(result);
      });
    };
    if (running < 3) start();
    else queue.push(start);
  });
}

const runs = {
  good: queued(['check', good]),
  broken: queued(['check', broken]),
  types: queued(['check', types]),
  factory: queued(['check', factory]),
  syntax: queued(['check', syntax]),
  env: queued(['check', env], { NO_SUCH_RELAY_VAR: undefined }),
  missing: queued(['check', missing]),
  tls: queued(['check', tls]),
  unknown: queued(['serve', '--prot', '8080']),
  badPort: queued(['serve', 'x.yaml', '--port', '99999']),
  serveBroken: queued(['serve', broken]),
  serveBrokenWorkers: queued(['serve', broken, '--workers', '2']),
  help: queued(['--help']),
  version: queued(['--version']),
};

test('check: a valid config exits 0 and says what it found', async () => {
  const result = await runs.good;
  assert.is(result.code, 0, result.stderr);
  assert.is(result.stdout, `${good}: ok (1 route, 1 listener)\n`);
});

test('check: a broken config exits 2 with the file, line, document path and what was expected', async () => {
  const result = await runs.broken;
  assert.is(result.code, 2);
  assert.is(result.stdout, '');
  assert.is(
    result.stderr,
    `${broken}:9: routes[2].upstream: expected an absolute http:// or https:// URL, got "ftp://files.internal"\n` +
      `${broken}:10: routes[2].retry.maxRetry: unknown key "maxRetry" (did you mean "maxRetries"?)\n`,
  );
});

test('serve: a broken config is refused before anything listens, exit 2 with the same exact message (one process and --workers 2)', async () => {
  const expected =
    `${broken}:9: routes[2].upstream: expected an absolute http:// or https:// URL, got "ftp://files.internal"\n` +
    `${broken}:10: routes[2].retry.maxRetry: unknown key "maxRetry" (did you mean "maxRetries"?)\n`;
  for (const result of await Promise.all([runs.serveBroken, runs.serveBrokenWorkers])) {
    assert.is(result.code, 2);
    assert.is(result.stderr, expected);
    assert.not.match(result.stdout, /"msg":"listening"/);
  }
});

test('check: missing required keys, wrong types and unknown top-level keys', async () => {
  const result = await runs.types;
  assert.is(result.code, 2);
  assert.is(
    result.stderr,
    // A top-level key left out is at the document's first line, as a nested one is at its object's.
    `${types}:1: routes: required: expected an array\n` +
      `${types}:2: listen[0].port: expected a port number, got "eighty"\n` +
      `${types}:3: route: unknown key "route" (did you mean "routes"?)\n`,
  );
});

test('check: a stage factory refusing its options is a config error at that key', async () => {
  const result = await runs.factory;
  assert.is(result.code, 2);
  // JSON is one line here: the line finder reads JSON as it reads YAML.
  assert.match(result.stderr, new RegExp(`^${factory}:1: routes\\[0\\]\\.headers: .*bad header`));
});

test('check: a YAML syntax error names the line', async () => {
  const result = await runs.syntax;
  assert.is(result.code, 2);
  assert.is(result.stderr, `${syntax}:3: Flow map in block collection must be sufficiently indented and end with a }\n`);
});

test('check: an unset environment variable without a default is named, with its line', async () => {
  const result = await runs.env;
  assert.is(result.code, 2);
  assert.is(result.stderr, `${env}:3: routes[0].upstream: environment variable NO_SUCH_RELAY_VAR is not set (write \${NO_SUCH_RELAY_VAR:-default} for a default)\n`);
});

test('check: a missing file, a missing TLS file (with its line)', async () => {
  const [absent, certificate] = await Promise.all([runs.missing, runs.tls]);
  assert.is(absent.code, 2);
  assert.is(absent.stderr, `${missing}: no such file\n`);
  assert.is(certificate.code, 2);
  assert.is(certificate.stderr, `${tls}:2: listen[0].tls.cert: no such file: cert.pem\n`);
});

test('usage errors exit 2; --help and --version exit 0', async () => {
  const [unknown, badPort, help, version] = await Promise.all([runs.unknown, runs.badPort, runs.help, runs.version]);
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
