import { Readable, Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientInfo, createRelay, stageContext, type ProxyRequest, type ProxyResponse, type Stage } from '@relay/core';
import { retry } from '@relay/retry';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, type MemoryLogger, type SeenRequest } from '@relay/testkit';
import { transformRequest, transformRequestStream } from '../src/index.js';
import { sendExpectingContinue } from './helpers.js';

/** An upstream that answers 503 to the first `failures` requests, then echoes what it received. */
async function withRelay(stages: Stage[], failures: number, run: (url: string, seen: SeenRequest[], logger: MemoryLogger) => Promise<void>): Promise<void> {
  let left = failures;
  const upstream = await startUpstream((_req, res, seen) => {
    if (left-- > 0) {
      res.writeHead(503, { 'content-length': 0 }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(seen.body);
  });
  const logger = memoryLogger();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages }));
  try {
    await run(relay.url, upstream.requests, logger);
  } finally {
    await relay.close();
    await upstream.close();
  }
}

const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetchRaw(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

test('a JSON request body is rewritten, with its new Content-Length', async () => {
  const stage = transformRequest((body: any) => ({ ...body, source: 'gateway' }), { as: 'json' });
  await withRelay([stage], 0, async (url, seen) => {
    const response = await postJson(`${url}/orders`, { item: 'tea' });
    assert.is(response.status, 200);
    assert.equal(JSON.parse(seen[0]!.body.toString()), { item: 'tea', source: 'gateway' });
    assert.is(seen[0]!.headers['content-length'], String(seen[0]!.body.length));
  });
});

test('outside retry(), the transformed body is what every attempt sends, and fn runs once', async () => {
  let calls = 0;
  const stage = transformRequest(
    (text) => {
      calls++;
      return text.replace('secret', '******');
    },
    { types: ['text/plain'] },
  );
  await withRelay([stage, retry({ maxRetries: 2, backoffFactor: 1, methods: ['POST'] })], 2, async (url, seen) => {
    const response = await fetchRaw(`${url}/note`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'my secret note' });
    assert.is(response.status, 200);
    assert.is(response.text, 'my ****** note');
    assert.equal(
      seen.map((request) => request.body.toString()),
      ['my ****** note', 'my ****** note', 'my ****** note'],
    );
    assert.is(calls, 1);
  });
});

test('a gzip request body is decoded, rewritten and sent gzip again', async () => {
  const stage = transformRequest((body: any) => ({ ...body, n: body.n + 1 }), { as: 'json' });
  await withRelay([stage], 0, async (url, seen) => {
    await fetchRaw(`${url}/x`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: zlib.gzipSync('{"n":1}') });
    assert.is(seen[0]!.headers['content-encoding'], 'gzip');
    assert.is(zlib.gunzipSync(seen[0]!.body).toString(), '{"n":2}');
  });
});

test('a body that is not what it says gets 400; an fn that throws, 500; the upstream sees neither', async () => {
  const stage = transformRequest(
    (body: any) => {
      if (body.explode) throw new Error('boom');
      return body;
    },
    { as: 'json' },
  );
  await withRelay([stage], 0, async (url, seen, logger) => {
    const bad = await postJson(`${url}/x`, '{"not json');
    assert.is(bad.status, 400);
    assert.match(bad.text, /^400 Bad Request: /);
    const failing = await postJson(`${url}/x`, { explode: true });
    assert.is(failing.status, 500);
    assert.not.match(failing.text, /boom/);
    assert.is(seen.length, 0);
    assert.ok(logger.lines.some((line) => line.level === 'warn' && line.message.includes('cannot be read')));
    assert.ok(logger.lines.some((line) => line.level === 'error' && String(line.fields.error).includes('boom')));
  });
});

test('larger bodies and other types pass untouched', async () => {
  const stage = transformRequest(() => 'changed', { maxBytes: 10 });
  await withRelay([stage], 0, async (url, seen) => {
    await fetchRaw(`${url}/x`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'more than ten bytes' });
    await fetchRaw(`${url}/x`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: 'png' });
    await fetchRaw(`${url}/x`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'short' });
    assert.equal(
      seen.map((request) => request.body.toString()),
      ['more than ten bytes', 'png', 'changed'],
    );
  });
});

function upperCase(): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      callback(null, Buffer.from(chunk.toString().toUpperCase()));
    },
  });
}

test('a streaming request transform: the body goes up chunked and transformed, a retry replays it transformed', async () => {
  const stage = transformRequestStream(upperCase, { types: ['text/plain'] });
  await withRelay([stage, retry({ maxRetries: 1, backoffFactor: 1, methods: ['POST'] })], 1, async (url, seen) => {
    const response = await fetchRaw(`${url}/x`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello there' });
    assert.is(response.text, 'HELLO THERE');
    assert.equal(
      seen.map((request) => request.body.toString()),
      ['HELLO THERE', 'HELLO THERE'],
    );
  });
});

test('a replayable body stays replayable: each replay runs through a fresh Transform', async () => {
  const sent: string[] = [];
  const handler = transformRequestStream(upperCase, { types: ['text/plain'] }).wrap(async (request) => {
    for (const body of [request.body!, request.replayBody!(), request.replayBody!()]) {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      sent.push(Buffer.concat(chunks).toString());
    }
    return { status: 200, statusMessage: '', headers: {}, body: null } satisfies ProxyResponse;
  }, stageContext());
  const client = new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/x' });
  const bytes = Buffer.from('abc');
  const request: ProxyRequest = {
    method: 'POST',
    path: '/x',
    headers: { 'content-type': 'text/plain', 'content-length': '3' },
    body: Readable.from([bytes]),
    replayBody: () => Readable.from([bytes]),
    attempt: 1,
    client,
  };
  await handler(request);
  assert.equal(sent, ['ABC', 'ABC', 'ABC']);
});

test('a streaming request transform that fails aborts the attempt with 500', async () => {
  const failing = () =>
    new Transform({
      transform(_chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
        callback(new Error('cannot rewrite'));
      },
    });
  const upstream = await startUpstream((_req, res) => res.writeHead(200).end('ok'), { streaming: false });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [transformRequestStream(failing, { types: ['text/plain'] })] }));
  try {
    const response = await fetchRaw(`${relay.url}/x`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    assert.is(response.status, 500);
    assert.not.match(response.text, /cannot rewrite/);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('with end-to-end Expect (checkContinue → relay.handle), transformRequest answers 100 Continue itself and sends the buffered body without Expect', async () => {
  // The body is read before any upstream is asked, so no upstream 100 could reach the client: the stage sends it, as
  // nginx does with request buffering; the upstream gets a whole body with a Content-Length and nothing to wait for.
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [transformRequest((data: any) => ({ ...data, via: 'gw' }), { as: 'json' })] });
  const served = await serveRelay(relay);
  served.server.on('checkContinue', relay.handle);
  try {
    const answer = await sendExpectingContinue(`${served.url}/orders`, { 'content-type': 'application/json' }, '{"a":1}');
    assert.equal([answer.continued, answer.status], [true, 200]);
    assert.is(upstream.requests.length, 1);
    assert.equal(JSON.parse(upstream.requests[0]!.body.toString()), { a: 1, via: 'gw' });
    assert.is(upstream.requests[0]!.headers.expect, undefined);
    assert.is(upstream.requests[0]!.headers['content-length'], String(upstream.requests[0]!.body.length));
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('with end-to-end Expect, transformRequestStream keeps it end to end: the upstream\'s 100 Continue lets the body through, transformed', async () => {
  // Nothing is read before the upstream is asked: the Expect goes on, and the client gets 100 when the upstream sends it.
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [transformRequestStream(upperCase, { types: ['text/plain'] })] });
  const served = await serveRelay(relay);
  served.server.on('checkContinue', relay.handle);
  try {
    const answer = await sendExpectingContinue(`${served.url}/notes`, { 'content-type': 'text/plain' }, 'hello');
    assert.equal([answer.continued, answer.status], [true, 200]);
    assert.is(upstream.requests[0]!.headers.expect, '100-continue');
    assert.is(upstream.requests[0]!.body.toString(), 'HELLO');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test.run();
