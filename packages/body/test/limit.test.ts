import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientInfo, createRelay, type ProxyRequest, type Stage } from '@relay/core';
import { retry } from '@relay/retry';
import { delay, fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { bodyLimit, limitResolver } from '../src/index.js';
import { countingUpstream, sendChunked, sendExpectingContinue } from './helpers.js';

test('a declared Content-Length over the limit gets 413 and Connection: close; the upstream is never contacted', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [bodyLimit({ maxBytes: 1000 })] }));
  try {
    const response = await fetchRaw(`${relay.url}/upload`, { method: 'POST', body: Buffer.alloc(1001) });
    assert.is(response.status, 413);
    assert.is(response.headers.connection, 'close');
    assert.match(response.text, /^413 Content Too Large: .*\(ERR_BODY_TOO_LARGE\)\n$/);
    assert.not.match(response.text, /127\.0\.0\.1/);
    assert.is(upstream.requests.length, 0);
    assert.ok(logger.lines.some((line) => line.level === 'warn' && line.fields.code === 'ERR_BODY_TOO_LARGE'));
    const fits = await fetchRaw(`${relay.url}/upload`, { method: 'POST', body: Buffer.alloc(1000) });
    assert.is(fits.status, 200);
    assert.is(upstream.requests[0]!.body.length, 1000);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('a chunked body that crosses the limit aborts the attempt: 413, and the upstream never sees the whole body', async () => {
  const { upstream, seen } = await countingUpstream();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [bodyLimit({ maxBytes: 64 * 1024 })] }));
  try {
    // 40 chunks of 8 KiB = 320 KiB offered; the limit is crossed at the 9th.
    const response = await sendChunked(`${relay.url}/upload`, 8 * 1024, 40);
    assert.is(response.status, 413);
    assert.is(response.headers.connection, 'close');
    assert.match(response.body, /ERR_BODY_TOO_LARGE/);
    assert.ok(response.written < 40, `the client stopped after ${response.written} chunks`);
    assert.ok(await waitFor(() => seen[0]?.closed === true), 'the upstream request was aborted');
    assert.is(seen[0]!.ended, false);
    assert.ok(seen[0]!.bytes <= 64 * 1024, `the upstream saw ${seen[0]!.bytes} bytes`);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('a chunked body within the limit streams through whole', async () => {
  const { upstream, seen } = await countingUpstream();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [bodyLimit({ maxBytes: 64 * 1024 })] }));
  try {
    const response = await sendChunked(`${relay.url}/upload`, 8 * 1024, 8, { gapMs: 1 });
    assert.is(response.status, 200);
    assert.equal(JSON.parse(response.body), { bytes: 64 * 1024 });
    assert.is(seen[0]!.ended, true);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('crossing the limit after the response started closes the client connection', async () => {
  const { upstream, seen } = await countingUpstream({ answerEarly: true });
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [bodyLimit({ maxBytes: 16 * 1024 })] }));
  try {
    const response = await sendChunked(`${relay.url}/upload`, 8 * 1024, 40, { afterHead: true });
    // The head came before the limit was crossed; the body then stops short.
    assert.is(response.status, 200);
    assert.is(response.complete, false);
    assert.ok(await waitFor(() => seen[0]?.closed === true));
    assert.is(seen[0]!.ended, false);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('with retry() inside, a chunked body over the limit still gets 413', async () => {
  const { upstream, seen } = await countingUpstream();
  const stages = [bodyLimit({ maxBytes: 16 * 1024 }), retry({ maxRetries: 2, methods: ['POST'] })];
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages }));
  try {
    const response = await sendChunked(`${relay.url}/upload`, 8 * 1024, 20);
    assert.is(response.status, 413);
    // retry buffered the first 16 KiB for replay and never sent an attempt.
    assert.is(seen.length, 0);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('a body that crosses the limit before anything downstream listens is still a 413, never a crash', async () => {
  const { upstream, seen } = await countingUpstream();
  // A slow stage between the limit and the transport: the body crosses the limit while it waits.
  const slow: Stage = {
    name: 'slow',
    wrap: (next) =>
      async function slowStage(request) {
        await delay(300);
        return next(request);
      },
  };
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [bodyLimit({ maxBytes: 8 * 1024 }), slow] }));
  try {
    const started = Date.now();
    const response = await sendChunked(`${relay.url}/upload`, 4 * 1024, 10, { gapMs: 1 });
    assert.is(response.status, 413);
    // Not after the relay's 30 s write timeout: the attempt failed as soon as it read the body.
    assert.ok(Date.now() - started < 15_000, `answered after ${Date.now() - started} ms`);
    assert.is(seen.length, 0);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('a client that goes away mid-upload aborts the upstream attempt and leaves nothing in flight', async () => {
  const { upstream, seen } = await countingUpstream();
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [bodyLimit({ maxBytes: 1024 * 1024 })] }));
  try {
    const req = request(`${relay.url}/upload`, { method: 'POST', agent: false });
    req.on('error', () => {});
    req.write(Buffer.alloc(16 * 1024));
    assert.ok(await waitFor(() => (seen[0]?.bytes ?? 0) > 0), 'the upstream got the first bytes');
    req.destroy();
    assert.ok(await waitFor(() => seen[0]!.closed, 5_000), 'the upstream request was aborted');
    assert.is(seen[0]!.ended, false);
    assert.ok(await waitFor(() => relay.relay.inFlight === 0, 5_000));
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('limits per content type and per request: the first matching type wins, then maxBytes', async () => {
  const upstream = await startUpstream();
  const stages = [
    bodyLimit({
      maxBytes: (request) => (request.path.startsWith('/bulk/') ? 4096 : 100),
      types: { 'multipart/form-data': 2048, 'application/*+json': 10 },
    }),
  ];
  const relay = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages }));
  try {
    const post = async (path: string, type: string, size: number) =>
      (await fetchRaw(`${relay.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body: Buffer.alloc(size, 0x61) })).status;
    assert.is(await post('/form', 'multipart/form-data; boundary=x', 2000), 200);
    assert.is(await post('/form', 'multipart/form-data; boundary=x', 2049), 413);
    assert.is(await post('/doc', 'application/ld+json', 11), 413);
    assert.is(await post('/small', 'text/plain', 101), 413);
    assert.is(await post('/bulk/x', 'text/plain', 4000), 200);
  } finally {
    await relay.close();
    await upstream.close();
  }
});

test('with end-to-end Expect (checkContinue → relay.handle), a body within the limit gets the upstream\'s 100 Continue and goes through', async () => {
  // bodyLimit reads nothing before the upstream is asked: the Expect stays end to end. (A declared length over the
  // limit gets 413 and no 100 at all: review-s36-bodies.test.ts.)
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [bodyLimit({ maxBytes: 1024 })] });
  const served = await serveRelay(relay);
  served.server.on('checkContinue', relay.handle);
  try {
    const answer = await sendExpectingContinue(`${served.url}/upload`, { 'content-type': 'text/plain' }, 'x'.repeat(100));
    assert.equal([answer.continued, answer.status], [true, 200]);
    assert.is(upstream.requests[0]!.headers.expect, '100-continue');
    assert.is(upstream.requests[0]!.body.length, 100);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('limitResolver is the plain function behind the stage', () => {
  const client = new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/x' });
  const request = (type: string): ProxyRequest => ({ method: 'POST', path: '/x', headers: { 'content-type': type }, body: null, replayBody: null, attempt: 1, client });
  const limitOf = limitResolver({ maxBytes: 1024, types: { 'text/*': 10, 'application/json': Infinity } });
  assert.is(limitOf(request('text/html')), 10);
  assert.is(limitOf(request('application/json')), Infinity);
  assert.is(limitOf(request('image/png')), 1024);
  assert.is(limitResolver()(request('x/y')), 1024 * 1024);
});

test('bad options throw when the stage is built, naming the option', () => {
  assert.throws(() => bodyLimit({ maxByte: 10 } as never), /unknown option "maxByte" \(did you mean "maxBytes"\?/);
  assert.throws(() => bodyLimit({ maxBytes: -1 }), /bodyLimit: maxBytes must be a whole number of bytes/);
  assert.throws(() => bodyLimit({ maxBytes: 1.5 }), /maxBytes/);
  assert.throws(() => bodyLimit({ types: { 'text/*': -5 } }), /types\["text\/\*"\]/);
  assert.throws(() => bodyLimit({ types: { 'not a type': 5 } }), /must be a media type/);
  assert.throws(() => bodyLimit({ types: ['text/*'] as never }), /types must be an object/);
  assert.throws(() => bodyLimit(null as never), /needs an options object/);
});

test.run();
