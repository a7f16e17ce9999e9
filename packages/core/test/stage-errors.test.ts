import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, h2Request, listenHttp2, memoryLogger, sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { createRelay, RelayError, type Stage } from '../src/index.js';

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

test('a client aborted by the relay\'s side (a stage\'s client.abort(reason)) while still connected gets the reason\'s answer, never silence, over HTTP/1.1, HTTP/2 and relay.fetch', async () => {
  const upstream = await startUpstream();
  // A stage outside answers anyway; the stage inside ends the request for the whole client, with its own reason.
  const answersAnyway: Stage = {
    name: 'answers-anyway',
    wrap: (next) =>
      async function answersAnywayStage(request) {
        try {
          return await next(request);
        } catch {
          return { status: 200, statusMessage: '', headers: { 'content-length': '8' }, body: Readable.from(['fallback']) };
        }
      },
  };
  const abortsClient: Stage = {
    name: 'aborts-client',
    wrap: () =>
      function abortsClientStage(request) {
        const reason = new RelayError('ERR_DEADLINE', 'a deadline of its own');
        request.client.abort(reason);
        return Promise.reject(reason);
      },
  };
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [answersAnyway, abortsClient] });
  const served = await serveRelay(relay);
  const front = await listenHttp2(http2.createServer(relay.handle));
  const session = http2.connect(front.url);
  try {
    const raw = await sendRaw(served.port, 'GET /items HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n', 3000);
    assert.match(raw, /^HTTP\/1\.1 504 /, `HTTP/1.1: ${JSON.stringify(raw.slice(0, 40))}`);
    assert.match(raw, /ERR_DEADLINE/);
    let timer: NodeJS.Timeout | undefined;
    const answer = await Promise.race([
      h2Request(session, { ':method': 'GET', ':path': '/items' }),
      new Promise<never>((_resolve, reject) => (timer = setTimeout(reject, 3000, new Error('HTTP/2: no answer within 3 s')))),
    ]).finally(() => clearTimeout(timer));
    assert.is(answer.headers[':status'], 504);
    assert.match(answer.body, /ERR_DEADLINE/);
    // relay.fetch: its promise settles with the reason's answer too, never pending for good.
    const fetched = await Promise.race([
      relay.fetch(new Request('http://gw.test/items')),
      new Promise<null>((resolve) => (timer = setTimeout(resolve, 3000, null))),
    ]).finally(() => clearTimeout(timer));
    assert.ok(fetched !== null, 'relay.fetch never settled');
    assert.is(fetched!.status, 504);
    assert.match(await fetched!.text(), /ERR_DEADLINE/);
    assert.is(upstream.requests.length, 0);
  } finally {
    session.destroy();
    await front.close();
    await served.close();
    await upstream.close();
  }
});

test.run();
