// Review s35 (leaks): a config error is printed on stderr (`relay check`, `relay serve`) and logged at
// error on a refused reload: it must not carry the password of an upstream URL (often read from
// the environment, `upstream: ${API_URL}`), whatever else is wrong with that URL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, startUpstream } from '@relay/testkit';
import { loadConfig, serve } from '../src/index.js';
import { configDir, rejection } from './bin.js';

const secret = 'SECRET-TOKEN-42';
const files = configDir();

test.after(() => files.cleanup());

function yaml(upstream: string): string {
  return ['listen: [{ host: 127.0.0.1, port: 0 }]', 'routes:', `  - upstream: ${JSON.stringify(upstream)}`, ''].join('\n');
}

test('a config error about an upstream URL never shows its password (unparseable, wrong scheme, or from the environment)', async () => {
  for (const upstream of [`http://svc:${secret}@[10.0.0.5`, `ftp://svc:${secret}@10.0.0.5`, `htp://svc:${secret}@10.0.0.5:8000`]) {
    const error = await rejection(loadConfig(files.write(`bad-${Math.random().toString(36).slice(2)}.yaml`, yaml(upstream))));
    assert.match(error.message, /routes\[0\]\.upstream/, 'the error names the key');
    assert.not.ok(error.message.includes(secret), `the config error shows the password: ${error.message}`);
  }
  const error = await rejection(
    loadConfig(files.write('env.yaml', ['listen: [{ port: 0 }]', 'routes:', '  - upstream: ${API_URL}', ''].join('\n')), { ...process.env, API_URL: `ftp://svc:${secret}@10.0.0.5` }),
  );
  assert.not.ok(error.message.includes(secret), `the config error shows the password read from the environment: ${error.message}`);
});

test('a refused reload logs its config error without the upstream URL\'s password', async () => {
  const upstream = await startUpstream();
  const file = files.write('reload.yaml', yaml(upstream.url));
  const logger = memoryLogger();
  const running = await serve({ config: file, logger, watch: false });
  try {
    files.write('reload.yaml', yaml(`ftp://svc:${secret}@10.0.0.5`));
    assert.is(await running.reload(), false, 'the reload is refused');
    const refused = logger.lines.find((line) => line.message.startsWith('config reload refused'));
    assert.ok(refused !== undefined, 'the refusal is logged');
    assert.not.ok(JSON.stringify(logger.lines).includes(secret), `a log line shows the password: ${JSON.stringify(refused)}`);
  } finally {
    await running.stop();
    await upstream.close();
  }
});

test.run();
