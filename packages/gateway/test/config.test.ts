// Config loading without the bin: formats, environment references, defaults, module configs,
// route matching rules and precedence, the nearest-key hint.
import { mkdirSync, readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { IncomingMessage } from 'node:http';
import { ConfigError, loadConfig, validateConfig } from '../src/index.js';
import { Generation, newSharedStats } from '../src/generation.js';
import { planListeners } from '../src/listeners.js';
import { hostMatches, requestHost, underPrefix } from '../src/matcher.js';
import { nearestWord } from '../src/nearest.js';
import { createLogger } from '../src/log.js';
import { tlsFixture, tlsRenewedFixture } from '@relay/testkit';
import { configDir, rejection } from './bin.js';

const files = configDir();
test.after(() => files.cleanup());
const quiet = createLogger({ level: 'error' });

test('defaults: host 0.0.0.0, /healthz and /metrics on, status off, websocket on, prefix stripped', () => {
  const config = validateConfig({ listen: [{ port: 8080 }], routes: [{ upstream: 'http://127.0.0.1:9000' }] }, 'x.json');
  assert.equal(config.listen, [{ host: '0.0.0.0', port: 8080 }]);
  assert.equal(config.health, { path: '/healthz' });
  assert.equal(config.metrics, { path: '/metrics' });
  assert.is(config.status, false);
  assert.is(config.routes[0]!.websocket, true);
  assert.is(config.routes[0]!.stripPrefix, true);
  assert.equal(config.routes[0]!.match, { path: '/' });
});

test('environment: defaults, numbers and booleans from a whole reference, $${ literal', async () => {
  const path = files.write(
    'env.yaml',
    ['listen: [{ host: 127.0.0.1, port: "${GW_PORT:-8081}" }]', 'routes:', '  - upstream: ${GW_UP}', '    preserveHost: ${GW_PRESERVE}', '    headers: { extraRequest: { x-literal: "$${HOME}", x-mixed: "v-${GW_PORT:-1}" } }', ''].join('\n'),
  );
  const { config } = await loadConfig(path, { GW_UP: 'http://127.0.0.1:9000', GW_PRESERVE: 'true' });
  assert.is(config.listen[0]!.port, 8081);
  assert.is(config.routes[0]!.upstream, 'http://127.0.0.1:9000');
  assert.is(config.routes[0]!.preserveHost, true);
  assert.equal(config.routes[0]!.headers!.extraRequest, { 'x-literal': '${HOME}', 'x-mixed': 'v-1' });
});

test('environment: a variable set to "" is set (no error); a default still replaces it, as the shell\'s :- does', async () => {
  const path = files.write(
    'env-empty.yaml',
    ['listen: [{ port: 8080 }]', 'routes:', '  - upstream: http://127.0.0.1:9000', '    headers: { extraRequest: { x-tenant: "${GW_TENANT}", x-zone: "${GW_ZONE:-eu}" } }', ''].join('\n'),
  );
  const { config } = await loadConfig(path, { GW_TENANT: '', GW_ZONE: '' });
  assert.equal(config.routes[0]!.headers!.extraRequest, { 'x-tenant': '', 'x-zone': 'eu' });
  const unset = await rejection(loadConfig(path, {}));
  assert.match(unset.message, /environment variable GW_TENANT is not set/);
});

test('environment: a quoted whole reference stays a string, unless its key takes only a number or boolean', async () => {
  const path = files.write(
    'env-quoted.yaml',
    [
      'listen: [{ port: "${GW_PORT}" }]',
      'routes:',
      '  - upstream: http://127.0.0.1:9000',
      '    preserveHost: "${GW_FLAG}"',
      '    headers:',
      '      extraRequest:',
      '        x-api-key: "${GW_KEY}"',
      "        x-flag: '${GW_FLAG}'",
      '        x-block: |-',
      '          ${GW_KEY}',
      '',
    ].join('\n'),
  );
  const { config } = await loadConfig(path, { GW_PORT: '8082', GW_KEY: '123456', GW_FLAG: 'true' });
  assert.is(config.listen[0]!.port, 8082, 'a quoted port (a flow mapping needs the quotes) is still a port');
  assert.is(config.routes[0]!.preserveHost, true);
  assert.equal(config.routes[0]!.headers!.extraRequest, { 'x-api-key': '123456', 'x-flag': 'true', 'x-block': '123456' });
});

test('a module config: default export, or a function returning the config', async () => {
  const plain = files.write('plain.mjs', "export default { listen: [{ port: 1 }], routes: [{ upstream: 'http://127.0.0.1:9000' }] };\n");
  assert.is((await loadConfig(plain)).config.listen[0]!.port, 1);
  const fn = files.write('fn.mjs', "export default async () => ({ listen: [{ port: 2 }], routes: [{ upstream: 'http://127.0.0.1:9000' }] });\n");
  assert.is((await loadConfig(fn)).config.listen[0]!.port, 2);
  const none = files.write('none.mjs', 'export const config = {};\n');
  const error = await rejection(loadConfig(none));
  assert.is(error.message, `${none}: expected a default export: export default defineConfig({ ... })`);
});

test('a module config split over files: each load reads the imported files afresh, every file keeps its own import.meta.url, files lists them', async () => {
  mkdirSync(`${files.dir}/split/shared`, { recursive: true });
  files.write('split/shared/tls.ts', "import { readFileSync } from 'node:fs';\nexport const ca: string = readFileSync(new URL('./ca.txt', import.meta.url), 'utf8').trim();\nexport const here = import.meta.dirname;\n");
  files.write('split/shared/ca.txt', 'http://127.0.0.1:9001\n');
  files.write('split/port.json', '{ "port": 7001 }\n');
  const path = files.write(
    'split/gateway.config.ts',
    [
      "import { readFileSync } from 'node:fs';",
      "import { ca, here } from './shared/tls.ts';",
      "import port from './port.json';",
      "const name: string = readFileSync(new URL('./name.txt', import.meta.url), 'utf8').trim();",
      "export default { listen: [{ port: port.port }], routes: [{ name, match: { path: '/' + here.split('/').at(-1) }, upstream: ca }] };",
      '',
    ].join('\n'),
  );
  files.write('split/name.txt', 'svc\n');
  const loaded = await loadConfig(path);
  assert.equal([loaded.config.listen[0]!.port, loaded.config.routes[0]!.name, loaded.config.routes[0]!.match.path, loaded.config.routes[0]!.upstream], [7001, 'svc', '/shared', 'http://127.0.0.1:9001']);
  assert.equal([...loaded.files!].sort(), [`${files.dir}/split/gateway.config.ts`, `${files.dir}/split/port.json`, `${files.dir}/split/shared/tls.ts`].sort());
  assert.is(loaded.files![0], `${files.dir}/split/gateway.config.ts`);
  files.write('split/shared/ca.txt', 'http://127.0.0.1:9002\n');
  files.write('split/port.json', '{ "port": 7002 }\n');
  const again = await loadConfig(path);
  assert.equal([again.config.listen[0]!.port, again.config.routes[0]!.upstream], [7002, 'http://127.0.0.1:9002']);
  // Nothing is left beside the config: the bundle is removed once imported.
  assert.equal(readdirSync(`${files.dir}/split`).sort(), ['gateway.config.ts', 'name.txt', 'port.json', 'shared']);
  // An error in an imported file names that file and line.
  files.write('split/shared/tls.ts', 'export const ca = ;\n');
  const error = await rejection(loadConfig(path));
  assert.match(error.message, /gateway\.config\.ts: the module failed to load: shared\/tls\.ts:1: /);
});

test('other extensions are refused by name', async () => {
  const path = files.write('gateway.toml', 'x = 1\n');
  assert.is((await rejection(loadConfig(path))).message, `${path}: expected a .yaml, .yml, .json, .ts, .mts, .js, .mjs or .cjs file`);
});

test('schema: two listeners with one name, two endpoints on one path and a shared listener: refused at the line the file sets', async () => {
  const issuesOf = async (lines: string[]) => {
    const path = files.write('duplicates.yaml', [...lines, 'routes: [{ upstream: "http://127.0.0.1:9000" }]', ''].join('\n'));
    return (await rejection(loadConfig(path))).issues;
  };
  assert.equal(await issuesOf(['listen:', '  - { name: public, port: 1 }', '  - { name: public, port: 2 }']), [
    { path: 'listen[1].name', line: 3, message: '"public" already names listen[0]: each listener needs its own name' },
  ]);
  assert.equal(await issuesOf(['listen: [{ port: 1 }]', 'status: { path: /metrics }']), [
    { path: 'status.path', line: 2, message: '"/metrics" is also metrics\'s path on the same listeners: each endpoint needs its own path' },
  ]);
  assert.equal(await issuesOf(['listen: [{ port: 1 }]', 'health:', '  path: /metrics']), [
    { path: 'health.path', line: 3, message: '"/metrics" is also metrics\'s path on the same listeners: each endpoint needs its own path' },
  ]);
  assert.equal(await issuesOf(['listen: [{ port: 1 }]', 'health: { path: /s.json }', 'status: { path: /s }']), [
    { path: 'status.path', line: 3, message: 'its data (/s.json) is also health\'s path on the same listeners: each endpoint needs its own path' },
  ]);
  // On listeners apart, one path serves both.
  const apart = files.write(
    'apart.yaml',
    ['listen: [{ name: a, port: 1 }, { name: b, port: 2 }]', 'status: { path: /metrics, listeners: [a] }', 'metrics: { path: /metrics, listeners: [b] }', 'routes: [{ upstream: "http://127.0.0.1:9000" }]', ''].join('\n'),
  );
  assert.is((await loadConfig(apart)).config.listen.length, 2);
});

test('schema: a required key left out names the line of the object it is missing from, as every other issue does', async () => {
  const missing = files.write(
    'missing.yaml',
    ['listen:', '  - port: 0', 'routes:', '  - match: { path: /a }', '    upstream: http://127.0.0.1:9', '  - match: { path: /b }', '    retry: { maxRetries: 1 }', ''].join('\n'),
  );
  const error = await rejection(loadConfig(missing));
  const upstream = error.issues.find((one) => one.path === 'routes[1].upstream');
  // docs/gateway.md promises "the file, the line, the path" for every problem: not "missing.yaml: routes[1].upstream: …".
  assert.is(upstream?.line, 6, error.message);
  assert.match(error.message, /missing\.yaml:6: routes\[1\]\.upstream: /);
  const noPort = files.write('no-port.yaml', ['listen:', '  - host: 127.0.0.1', 'routes:', '  - upstream: http://127.0.0.1:9', ''].join('\n'));
  const port = (await rejection(loadConfig(noPort))).issues.find((one) => one.path === 'listen[0].port');
  assert.is(port?.line, 2);
});

test('schema: hosts, paths, methods, trustProxy', () => {
  const bad = (routes: unknown, extra: object = {}) => {
    try {
      validateConfig({ listen: [{ port: 1 }], routes, ...extra }, 'g.json');
    } catch (error) {
      return (error as ConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
    }
    return [];
  };
  assert.equal(bad([{ upstream: 'http://a', match: { host: 'api.example.com:8080' } }]), [
    'routes[0].match.host: expected a host name such as api.example.com or *.example.com (no port), got "api.example.com:8080"',
  ]);
  assert.equal(bad([{ upstream: 'http://a', match: { path: '/a/../b' } }]), ['routes[0].match.path: expected a path without . or .. segments']);
  const normal = validateConfig({ listen: [{ port: 1 }], routes: [{ upstream: 'http://a', match: { path: '/caf%c3%a9/' }, upstreamPrefix: '/%7Ev1%2f' }] }, 'g.json');
  assert.equal([normal.routes[0]!.match.path, normal.routes[0]!.upstreamPrefix], ['/caf%C3%A9', '/~v1%2F'], 'prefixes normalised as request paths are');
  // Normalised before the dot check, as a request's path is before core's: an escaped dot is a dot.
  assert.equal(bad([{ upstream: 'http://a', match: { path: '/a/%2e%2E/b' } }]), ['routes[0].match.path: expected a path without . or .. segments']);
  assert.equal(bad([{ upstream: 'http://a', match: { path: 'api' } }]), ['routes[0].match.path: expected a path such as /api (no query, no //)']);
  assert.equal(bad([{ upstream: 'http://a', match: { methods: ['GE T'] } }]), ['routes[0].match.methods[0]: expected an HTTP method such as GET']);
  assert.equal(bad([{ upstream: 'http://a' }], { trustProxy: ['10.0.0.0/8', '10.0.0.1/33'] }), ['trustProxy[1]: expected an IP address or CIDR, got "10.0.0.1/33"']);
  assert.equal(bad([{ upstream: { url: 'http://a', tsl: {} } }]), ['routes[0].upstream.tsl: unknown key "tsl" (did you mean "tls"?)']);
  assert.equal(bad([{ upstream: 42 }]), ['routes[0].upstream: expected a URL string, { url, tls } or a list of them']);
  assert.equal(bad([{ upstream: 'http://a', websocket: { idle: 5 } }]), ['routes[0].websocket.idle: unknown key "idle" (expected one of maxPayload, highWaterMark, idleTimeout, closeTimeout, perMessageDeflate, maxFragments, limits)']);
  assert.equal(bad([]), ['routes: expected at least one route, got a list of 0']);
  assert.equal(bad([{ upstream: 'http://a' }], { listen: [{ name: 'public', port: 1 }], status: { path: '/status', listeners: ['admin'] } }), [
    'status.listeners[0]: no listener is named "admin" (names: public)',
  ]);
});

test('schema: a wrong type for a key taking true or options says what each form is and what was given; list-form typos name the nearest key', () => {
  const issues = (route: object) => {
    try {
      validateConfig({ listen: [{ port: 1 }], routes: [{ upstream: 'http://a', ...route }] }, 'g.json');
    } catch (error) {
      return (error as ConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
    }
    return [];
  };
  assert.equal(issues({ compress: 'yes' }), ['routes[0].compress: expected a boolean or { threshold, types, gzipLevel, brotliQuality }, got "yes"']);
  assert.equal(issues({ accessLog: 'on' }), ['routes[0].accessLog: expected a boolean or { format, query, headers }, got "on"']);
  assert.equal(issues({ rateLimit: 5 }), ['routes[0].rateLimit: expected { points, duration, burst, key, name, dryRun, headers, failOpen, store } or a list, got 5']);
  assert.equal(issues({ headers: { extraRequest: { 'x-b': 12345 } } }), ['routes[0].headers.extraRequest.x-b: expected a string or a list, got 12345']);
  assert.equal(issues({ rateLimit: [{ points: 5, duration: 1000, burts: 3 }] }), ['routes[0].rateLimit[0].burts: unknown key "burts" (did you mean "burst"?)']);
  assert.equal(issues({ rateLimit: [{ points: 5, duration: 1000, zzz: 3 }] }), [
    'routes[0].rateLimit[0].zzz: unknown key "zzz" (expected one of points, duration, burst, key, name, dryRun, headers, failOpen, store)',
  ]);
});

test('schema: a listen host is an IP address or a host name; "host:port" or brackets are refused before serve', () => {
  const issues = (host: string) => {
    try {
      validateConfig({ listen: [{ host, port: 8080 }], routes: [{ upstream: 'http://a' }] }, 'g.json');
    } catch (error) {
      return (error as ConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
    }
    return [];
  };
  for (const host of ['0.0.0.0', '::', '::1', '10.0.0.5', 'localhost', 'gw-1.internal']) assert.equal(issues(host), [], host);
  for (const host of ['127.0.0.1:8080', '[::1]', 'http://0.0.0.0', '', 'a b']) {
    assert.equal(issues(host), [`listen[0].host: expected an IP address or a host name to bind, such as 0.0.0.0, :: or localhost (the port goes in port), got "${host}"`], host);
  }
});

test('building: a relay option core refuses is a config error at the route', async () => {
  const path = files.write('creds.json', JSON.stringify({ listen: [{ port: 1 }], routes: [{ upstream: 'http://user:pw@127.0.0.1:9000' }] }));
  const loaded = await loadConfig(path);
  try {
    new Generation({ number: 1, loaded, shared: newSharedStats(), logger: quiet });
    assert.unreachable('should refuse');
  } catch (error) {
    assert.instance(error, ConfigError);
    assert.match((error as ConfigError).message, new RegExp(`^${path}:1: routes\\[0\\]\\.upstream: targetBaseUrl must not contain credentials`));
  }
});

test('building: a stage factory\'s refusal names the line of its key\'s value in a YAML file', async () => {
  const path = files.write(
    'factory.yaml',
    ['listen: [{ port: 1 }]', 'routes:', '  - upstream: http://127.0.0.1:9000', '    headers:', '      extraRequest: { "bad header": x }', ''].join('\n'),
  );
  const loaded = await loadConfig(path);
  const error = await rejection(Promise.resolve().then(() => new Generation({ number: 1, loaded, shared: newSharedStats(), logger: quiet })));
  assert.equal(
    error.issues.map((issue) => [issue.path, issue.line]),
    [['routes[0].headers', 5]],
  );
  assert.match(error.message, new RegExp(`^${path}:5: routes\\[0\\]\\.headers: `));
});

test('listeners: a TLS file that is missing or cannot be used (not a PEM, the key of another certificate) is a config error at its line', async () => {
  files.write('tls-cert.pem', tlsFixture.cert.toString());
  files.write('tls-other-key.pem', tlsRenewedFixture.key.toString());
  files.write('tls-garbage.pem', 'not a certificate\n');
  const issueOf = async (cert: string, key: string) => {
    const path = files.write('tls-listener.yaml', ['routes: [{ upstream: "http://127.0.0.1:9000" }]', 'listen:', `  - { port: 1, tls: { cert: ${cert}, key: ${key} } }`, ''].join('\n'));
    const error = await rejection(loadConfig(path).then(planListeners));
    assert.is(error.issues.length, 1);
    return { path: error.issues[0]!.path, line: error.issues[0]!.line, message: error.issues[0]!.message };
  };
  assert.equal(await issueOf('tls-cert.pem', 'absent.pem'), { path: 'listen[0].tls.key', line: 3, message: 'no such file: absent.pem' });
  const garbage = await issueOf('tls-garbage.pem', 'tls-other-key.pem');
  assert.equal([garbage.path, garbage.line], ['listen[0].tls', 3]);
  assert.match(garbage.message, /^cannot use this certificate and key: /);
  const mismatch = await issueOf('tls-cert.pem', 'tls-other-key.pem');
  assert.equal([mismatch.path, mismatch.line], ['listen[0].tls', 3]);
  assert.match(mismatch.message, /^cannot use this certificate and key: .*key values mismatch/);
});

test('precedence: exact host, then wildcard, then any host; longest path; methods; file order', async () => {
  const path = files.write(
    'order.json',
    JSON.stringify({
      listen: [{ port: 1 }],
      routes: [
        { name: 'any-root', upstream: 'http://127.0.0.1:1' },
        { name: 'any-api', match: { path: '/api' }, upstream: 'http://127.0.0.1:1' },
        { name: 'wild-api', match: { path: '/api', host: '*.example.com' }, upstream: 'http://127.0.0.1:1' },
        { name: 'exact-root', match: { host: 'a.example.com' }, upstream: 'http://127.0.0.1:1' },
        { name: 'any-api-get', match: { path: '/api', methods: ['GET'] }, upstream: 'http://127.0.0.1:1' },
      ],
    }),
  );
  const generation = new Generation({ number: 1, loaded: await loadConfig(path), shared: newSharedStats(), logger: quiet });
  assert.equal(
    generation.ordered.map((route) => route.label),
    ['exact-root', 'wild-api', 'any-api-get', 'any-api', 'any-root'],
  );
});

test('matching: prefixes on segment boundaries, one-label wildcards, hosts without port or case', () => {
  assert.ok(underPrefix('/api', '/api'));
  assert.ok(underPrefix('/api/x', '/api'));
  assert.ok(underPrefix('/api?x=1', '/api'));
  assert.not.ok(underPrefix('/apix', '/api'));
  assert.ok(underPrefix('/anything', '/'));
  const matcher = { hosts: new Set(['example.com']), wildcards: ['.example.com'] } as never;
  assert.ok(hostMatches(matcher, 'example.com'));
  assert.ok(hostMatches(matcher, 'a.example.com'));
  assert.not.ok(hostMatches(matcher, 'a.b.example.com'));
  assert.not.ok(hostMatches(matcher, 'badexample.com'));
  const host = (value: string | undefined) => requestHost({ headers: { host: value } } as IncomingMessage);
  assert.is(host('API.Example.com:8080'), 'api.example.com');
  assert.is(host('example.com.'), 'example.com');
  assert.is(host('[::1]:8080'), '::1');
  assert.is(host(undefined), '');
  const absolute = (url: string) => requestHost({ url, headers: { host: 'header.example' } } as IncomingMessage);
  assert.is(absolute('http://user@Target.example:8080/x'), 'target.example', 'an absolute-form target names the host');
  assert.is(absolute('/x'), 'header.example');
});

test('nearest key: close typos only', () => {
  assert.is(nearestWord('upstreem', ['upstream', 'match']), 'upstream');
  assert.is(nearestWord('maxRetry', ['maxRetries', 'maxBackoff']), 'maxRetries');
  assert.is(nearestWord('zzz', ['upstream', 'match']), undefined);
});

test.run();
