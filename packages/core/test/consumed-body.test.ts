import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, memoryLogger, startUpstream } from '@relay/testkit';
import { createRelay } from '../src/index.js';

test('relay.handle after something read the body answers 500 ERR_BODY_CONSUMED at once, with an error log line', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger, timeout: { read: 5_000 } });
  await relay.startup();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => relay.handle(req, res));
  });
  const url = await listen(server);
  const started = Date.now();
  const response = await fetchRaw(`${url}/x`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
  assert.is(response.status, 500);
  assert.ok(response.text.includes('ERR_BODY_CONSUMED'));
  assert.ok(Date.now() - started < 2_000, 'no wait for the read timeout');
  assert.ok(logger.lines.some((l) => l.level === 'error' && l.fields.code === 'ERR_BODY_CONSUMED'));
  assert.is(upstream.requests.length, 0, 'never an empty body upstream');
  const get = await fetchRaw(`${url}/y`);
  assert.is(get.status, 200, 'a request without a body is unaffected');
  await close(server);
  await relay.shutdown();
  await upstream.close();
});

test.run();
