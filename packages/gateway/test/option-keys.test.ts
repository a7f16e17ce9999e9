// The gateway's options reject an unknown key naming the nearest valid one: the programmatic API with a
// TypeError, the config file (every nested key, union forms included) with a ConfigError.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createGateway, createLogger, runPrimary, serve, validateConfig, type ConfigError, type LoadedConfig } from '../src/index.js';

const unknownKey = (key: string, nearest: string) => (error: Error) =>
  error instanceof TypeError && error.message.includes(`unknown option "${key}"`) && error.message.includes(`did you mean "${nearest}"`);

const logger = createLogger({ level: 'error', stream: { write: () => true } as never });

test('createLogger({ levl }) names "level"; createGateway(config, { loger }) names "logger"', () => {
  assert.throws(() => createLogger({ levl: 'debug' } as never), unknownKey('levl', 'level'));
  assert.throws(() => createLogger('debug' as never), (error: Error) => error instanceof TypeError && /createLogger\(options\) needs an options object/.test(error.message));
  const loaded = { config: validateConfig({ listen: [{ port: 1 }], routes: [{ upstream: 'http://127.0.0.1:9' }] }, 'g.json'), file: 'g.json', text: '' } as unknown as LoadedConfig;
  assert.throws(() => createGateway(loaded, { loger: logger } as never), unknownKey('loger', 'logger'));
});

test('serve({ confg }) and runPrimary({ worker }) reject naming the nearest key, before reading any file', async () => {
  await serve({ confg: 'gateway.yaml', logger } as never).then(
    () => assert.unreachable('serve accepted { confg }'),
    (error: Error) => assert.ok(unknownKey('confg', 'config')(error), error.message),
  );
  await runPrimary({ config: 'gateway.yaml', worker: 2, logger } as never).then(
    () => assert.unreachable('runPrimary accepted { worker }'),
    (error: Error) => assert.ok(unknownKey('worker', 'workers')(error), error.message),
  );
});

const issues = (extra: object, route: object = {}) => {
  try {
    validateConfig({ listen: [{ port: 1 }], routes: [{ upstream: 'http://a', ...route }], ...extra }, 'g.json');
  } catch (error) {
    return (error as ConfigError).issues.map((issue) => `${issue.path}: ${issue.message}`);
  }
  return [];
};

test('config: a misspelled key of an endpoint ({ path, listeners } or false) names the nearest key', () => {
  assert.ok(issues({ health: { pth: '/h' } }).includes('health.pth: unknown key "pth" (did you mean "path"?)'), issues({ health: { pth: '/h' } }).join('\n'));
  assert.ok(issues({ status: { pat: '/s' } }).includes('status.pat: unknown key "pat" (did you mean "path"?)'), issues({ status: { pat: '/s' } }).join('\n'));
});

test('config: rateLimit key { heder } names "header" ({ header } and { cookie } are both valid there)', () => {
  assert.equal(issues({}, { rateLimit: { points: 5, duration: 1000, key: { heder: 'x-api-key' } } }), [
    'routes[0].rateLimit.key.heder: unknown key "heder" (did you mean "header"?)',
  ]);
  assert.equal(issues({}, { rateLimit: [{ points: 5, duration: 1000, key: { cokie: 'sid' } }] }), [
    'routes[0].rateLimit[0].key.cokie: unknown key "cokie" (did you mean "cookie"?)',
  ]);
});

test.run();
