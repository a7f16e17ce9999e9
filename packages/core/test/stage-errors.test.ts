import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { createRelay, type Stage } from '../src/index.js';

test('a stage that throws synchronously gets a 500 ERR_INTERNAL and a log line; the process keeps serving', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const throwsOnBoom: Stage = {
    name: 'sync-thrower',
    wrap: (next) =>
      function syncThrower(request) {
        if (request.path.startsWith('/boom')) throw new Error('stage bug');
        return next(request);
      },
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [throwsOnBoom], logger }));
  const failed = await fetchRaw(`${served.url}/boom`);
  assert.is(failed.status, 500);
  assert.ok(failed.text.includes('ERR_INTERNAL'), failed.text);
  assert.not.ok(failed.text.includes('stage bug'), 'the error message stays in the log');
  const line = logger.lines.find((entry) => entry.level === 'error' && entry.fields.code === 'ERR_INTERNAL');
  assert.ok(line !== undefined && String(line.fields.error).includes('stage bug'), 'logged with the detail');
  const after = await fetchRaw(`${served.url}/fine`);
  assert.is(after.status, 200, 'the relay still serves');
  assert.is(upstream.requests.length, 1, 'only the good request reached the upstream');
  await served.close();
  await upstream.close();
});

test.run();
