// Two listeners on one address and port can never both listen: `relay check` refuses the config,
// rather than `relay serve` failing with EADDRINUSE (exit 1) on any machine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateConfig, type ConfigError } from '../src/index.js';
import { configDir, runBin } from './bin.js';

const files = configDir();
test.after(() => files.cleanup());

test('relay check refuses two listeners on one address and port, with exit code 2 and the line; port 0 twice stays allowed', async () => {
  // `relay check` promises to validate the config without starting (issue 19); this config passed it
  // (`ok (1 route, 2 listeners)`) and then `relay serve` failed with EADDRINUSE.
  const twice = files.write(
    'listen-twice.yaml',
    ['listen:', '  - { host: 127.0.0.1, port: 8089 }', '  - { host: 127.0.0.1, port: 8089 }', 'routes:', '  - upstream: http://127.0.0.1:9', ''].join('\n'),
  );
  const zero = files.write('listen-zero.yaml', ['listen:', '  - { host: 127.0.0.1, port: 0 }', '  - { host: 127.0.0.1, port: 0 }', 'routes:', '  - upstream: http://127.0.0.1:9', ''].join('\n'));
  // The two bins start together: each spends seconds loading the TypeScript sources.
  const [refused, ok] = await Promise.all([runBin(['check', twice]), runBin(['check', zero])]);
  assert.is(refused.code, 2, `${refused.stdout}${refused.stderr}`);
  assert.match(refused.stderr, /listen-twice\.yaml:3: listen\[1\]: 127\.0\.0\.1 port 8089 is also listen\[0\]'s/);
  assert.is(ok.code, 0, ok.stderr);
});

test('one address written two ways is one address: the default host, case, a final dot, IPv6 zeros', () => {
  const issues = (listen: Array<Record<string, unknown>>) => {
    try {
      validateConfig({ listen, routes: [{ upstream: 'http://127.0.0.1:9' }] }, 'g.json');
      return [];
    } catch (error) {
      return (error as ConfigError).issues.map((issue) => issue.path);
    }
  };
  assert.equal(issues([{ port: 8080 }, { host: '0.0.0.0', port: 8080 }]), ['listen[1]']);
  assert.equal(issues([{ host: 'LocalHost', port: 8080 }, { host: 'localhost.', port: 8080 }]), ['listen[1]']);
  assert.equal(issues([{ host: '::0', port: 8080 }, { host: '::', port: 8080 }, { host: '0:0::0', port: 8080 }]), ['listen[1]', 'listen[2]']);
  assert.equal(issues([{ host: '127.0.0.1', port: 8080 }, { host: '127.0.0.1', port: 8081 }, { host: '127.0.0.2', port: 8080 }]), []);
});

test('a wildcard and an address it covers on one port cannot both listen (Linux: EADDRINUSE): refused too', () => {
  const issues = (listen: Array<Record<string, unknown>>) => {
    try {
      validateConfig({ listen, routes: [{ upstream: 'http://127.0.0.1:9' }] }, 'g.json');
      return [];
    } catch (error) {
      return (error as ConfigError).issues.map((issue) => issue.path);
    }
  };
  assert.equal(issues([{ host: '0.0.0.0', port: 8080 }, { host: '127.0.0.1', port: 8080 }]), ['listen[1]']);
  assert.equal(issues([{ host: '127.0.0.1', port: 8080 }, { host: '0.0.0.0', port: 8080 }]), ['listen[1]']);
  // node listens on :: dual-stack: it takes every IPv4 and IPv6 address of the port.
  assert.equal(issues([{ host: '::', port: 8080 }, { host: '0.0.0.0', port: 8080 }]), ['listen[1]']);
  assert.equal(issues([{ host: '::1', port: 8080 }, { host: '::', port: 8080 }]), ['listen[1]']);
  // 0.0.0.0 takes IPv4 only; a name is compared as written.
  assert.equal(issues([{ host: '0.0.0.0', port: 8080 }, { host: '::1', port: 8080 }]), []);
  assert.equal(issues([{ host: '0.0.0.0', port: 8080 }, { host: 'localhost', port: 8080 }]), []);
});

test.run();
