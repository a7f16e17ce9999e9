// Review s35 (leaks): log lines of @relay/body's stages must show the path without its query
// (core's rule, `logQuery: false` by default, docs/logging.md "What is logged"): queries carry tokens.
import { Transform } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, type MemoryLogger } from '@relay/testkit';
import { bodyLimit, transformRequest, transformResponse, transformResponseStream } from '../src/index.js';

const secret = 'SECRET-TOKEN-42';

async function logsOf(stages: Stage[], run: (url: string) => Promise<void>, logQuery?: boolean): Promise<MemoryLogger> {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":1}');
  });
  const logger = memoryLogger();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages, ...(logQuery === undefined ? {} : { logQuery }) }));
  try {
    await run(relay.url);
  } finally {
    await relay.close();
    await upstream.close();
  }
  return logger;
}

function assertNoSecret(logger: MemoryLogger, expectedCode: RegExp): void {
  const logged = JSON.stringify(logger.lines);
  assert.match(logged, expectedCode, 'the failure was logged');
  assert.not.ok(logged.includes(secret), `a log line carries the query's token: ${logged}`);
}

test('bodyLimit: the 413 warn line shows the path without its query', async () => {
  const logger = await logsOf([bodyLimit({ maxBytes: 10 })], async (url) => {
    const response = await fetchRaw(`${url}/upload?token=${secret}`, { method: 'POST', body: Buffer.alloc(100) });
    assert.is(response.status, 413);
  });
  assertNoSecret(logger, /ERR_BODY_TOO_LARGE/);
  assert.ok(logger.lines.some((line) => line.fields.path === '/upload'), 'the path is still logged');
});

test('bodyLimit: with logQuery: true the query is logged (the option the relay chose)', async () => {
  const logger = await logsOf(
    [bodyLimit({ maxBytes: 10 })],
    async (url) => {
      await fetchRaw(`${url}/upload?token=${secret}`, { method: 'POST', body: Buffer.alloc(100) });
    },
    true,
  );
  assert.ok(JSON.stringify(logger.lines).includes(secret));
});

test('transformRequest: the 500 (transform threw) and 400 (undecodable body) lines show the path without its query', async () => {
  const failing = transformRequest(
    () => {
      throw new Error('bad');
    },
    { as: 'json' },
  );
  const logger = await logsOf([failing], async (url) => {
    const threw = await fetchRaw(`${url}/x?token=${secret}`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    assert.is(threw.status, 500);
    const undecodable = await fetchRaw(`${url}/x?token=${secret}`, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } });
    assert.is(undecodable.status, 400);
  });
  assertNoSecret(logger, /request transform/);
});

test('transformResponse: the 502 line of a failed transform shows the path without its query', async () => {
  const failing = transformResponse(
    () => {
      throw new Error('bad');
    },
    { as: 'json' },
  );
  const logger = await logsOf([failing], async (url) => {
    const response = await fetchRaw(`${url}/x?token=${secret}`);
    assert.is(response.status, 502);
  });
  assertNoSecret(logger, /response transform failed/);
});

test('transformResponseStream: the 502 line of a Transform that fails before the head shows the path without its query', async () => {
  const failing = transformResponseStream(
    () =>
      new Transform({
        transform(_chunk, _encoding, callback) {
          callback(new Error('bad'));
        },
      }),
    { types: ['application/json'] },
  );
  const logger = await logsOf([failing], async (url) => {
    const response = await fetchRaw(`${url}/x?token=${secret}`);
    assert.is(response.status, 502);
  });
  assertNoSecret(logger, /response stream transform failed/);
});

test.run();
