import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger } from '@relay/testkit';
import { ClientInfo, RelayError, parseTarget, stageContext, type Handler, type ProxyRequest, type ProxyResponse } from '@relay/core';
import { retry, type RetryOptions } from '../src/index.js';

function fakeRequest(overrides: Partial<ProxyRequest> = {}): ProxyRequest {
  return {
    method: 'GET',
    path: '/x',
    headers: { accept: 'text/plain' },
    body: null,
    replayBody: null,
    attempt: 1,
    client: new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/x' }),
    ...overrides,
  };
}

function answer(status: number, body: Readable | null = null, headers: ProxyResponse['headers'] = {}): ProxyResponse {
  return { status, statusMessage: '', headers, body };
}

async function readAll(body: Readable | null): Promise<string> {
  if (body === null) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString();
}

function build(options: RetryOptions, next: Handler, logger = memoryLogger()) {
  return retry(options).wrap(next, stageContext({ logger }));
}

test('every attempt keeps what an outer stage chose: the target and the trailer fields', async () => {
  const target = parseTarget('http://chosen.internal:8080');
  const trailers = () => ({ 'x-digest': 'abc' });
  const seen: ProxyRequest[] = [];
  const handler = build({ maxRetries: 2, backoffFactor: 0 }, async (request) => {
    seen.push(request);
    return answer(seen.length < 3 ? 503 : 200);
  });
  const response = await handler(fakeRequest({ target, trailers }));
  assert.is(response.status, 200);
  assert.is(seen.length, 3);
  assert.ok(seen.every((attempt) => attempt.target === target), 'each attempt goes to the chosen target');
  assert.ok(seen.every((attempt) => attempt.trailers === trailers), 'each attempt carries the trailer fields');
});

test('each attempt is its own request value with its own headers, numbered from 1', async () => {
  const seen: ProxyRequest[] = [];
  const handler = build({ maxRetries: 3, backoffFactor: 0 }, async (request) => {
    seen.push(request);
    request.headers['x-token'] = `attempt-${request.attempt}`; // an inner stage writing its headers
    return answer(seen.length < 3 ? 503 : 200);
  });
  const original = fakeRequest();
  const response = await handler(original);
  assert.is(response.status, 200);
  assert.equal(seen.map((r) => r.attempt), [1, 2, 3]);
  assert.is.not(seen[0], seen[1]);
  assert.is.not(seen[0]!.headers, seen[1]!.headers);
  assert.is(original.headers['x-token'], undefined, 'an inner stage never changes what the next attempt starts from');
  assert.is(seen[2]!.headers.accept, 'text/plain');
});

test('a buffered body is replayed whole to every attempt, with its Content-Length and a replayBody', async () => {
  const bodies: string[] = [];
  const lengths: unknown[] = [];
  const handler = build({ maxRetries: 2, backoffFactor: 0, methods: ['POST'] }, async (request) => {
    bodies.push(await readAll(request.body));
    lengths.push(request.headers['content-length']);
    assert.type(request.replayBody, 'function');
    assert.is(await readAll(request.replayBody!()), 'part one, part two');
    return answer(bodies.length < 3 ? 502 : 201);
  });
  const response = await handler(fakeRequest({ method: 'POST', body: Readable.from([Buffer.from('part one, '), Buffer.from('part two')]) }));
  assert.is(response.status, 201);
  assert.equal(bodies, ['part one, part two', 'part one, part two', 'part one, part two']);
  assert.equal(lengths, ['18', '18', '18'], 'a chunked body gets its exact length');
});

test('a body declared larger than maxReplayBytes streams once and is not retried after it was read', async () => {
  let calls = 0;
  const handler = build({ maxRetries: 2, backoffFactor: 0, methods: ['PUT'], maxReplayBytes: 4 }, async (request) => {
    calls++;
    assert.is(await readAll(request.body), 'too long');
    return answer(503);
  });
  const body = Readable.from([Buffer.from('too long')]);
  const response = await handler(fakeRequest({ method: 'PUT', headers: { 'content-length': '8' }, body }));
  assert.is(response.status, 503);
  assert.is(calls, 1);
});

test('a streamed body that no attempt has read yet can still be sent again after a connection failure', async () => {
  let calls = 0;
  const handler = build({ maxRetries: 1, backoffFactor: 0, methods: ['PUT'], maxReplayBytes: 0 }, async (request) => {
    calls++;
    if (calls === 1) throw new RelayError('ERR_UPSTREAM_UNREACHABLE', 'connect ECONNREFUSED');
    return answer(200, Readable.from([await readAll(request.body)]));
  });
  const response = await handler(fakeRequest({ method: 'PUT', body: Readable.from([Buffer.from('intact')]) }));
  assert.is(calls, 2);
  assert.is(await readAll(response.body), 'intact');
});

test('retries used up on a status return the last response as it came; earlier ones are let go', async () => {
  const responses: ProxyResponse[] = [];
  const handler = build({ maxRetries: 2, backoffFactor: 0 }, async () => {
    const response = answer(503, Readable.from([`busy ${responses.length + 1}`]), { 'x-n': String(responses.length + 1) });
    responses.push(response);
    return response;
  });
  const last = await handler(fakeRequest());
  assert.is(last, responses[2]);
  assert.is(await readAll(last.body), 'busy 3');
  assert.ok(responses[0]!.body!.destroyed, 'a body of unknown length is destroyed');
  assert.ok(responses[1]!.body!.destroyed);
});

test('retries used up on an error rethrow the last RelayError', async () => {
  let calls = 0;
  const handler = build({ maxRetries: 2, backoffFactor: 0 }, async () => {
    calls++;
    throw new RelayError('ERR_CONNECT_TIMEOUT', 'connect timed out');
  });
  try {
    await handler(fakeRequest());
    assert.unreachable('should reject');
  } catch (error) {
    assert.is((error as RelayError).code, 'ERR_CONNECT_TIMEOUT');
  }
  assert.is(calls, 3);
});

test('with no retry possible the request passes through untouched: no copy, no buffering', async () => {
  const passed: ProxyRequest[] = [];
  const next: Handler = async (request) => {
    passed.push(request);
    return answer(503);
  };
  const post = fakeRequest({ method: 'POST', body: Readable.from(['x']) });
  await build({ maxRetries: 3 }, next)(post);
  const get = fakeRequest();
  await build({}, next)(get);
  assert.is(passed[0], post, 'POST is not retried by default');
  assert.is(passed[1], get, 'maxRetries defaults to 0');
  assert.is(passed.length, 2);
});

test('an aborted client stops the loop before another attempt', async () => {
  let calls = 0;
  const request = fakeRequest();
  const handler = build({ maxRetries: 3, backoffFactor: 1000 }, async () => {
    calls++;
    setTimeout(() => request.client.abort(), 20);
    return answer(503);
  });
  const started = performance.now();
  try {
    await handler(request);
    assert.unreachable('should reject');
  } catch (error) {
    assert.is((error as RelayError).code, 'ERR_CLIENT_ABORTED');
  }
  assert.ok(performance.now() - started < 500, 'the 1000 ms backoff was cut short');
  assert.is(calls, 1);
});

test('each retry is one log line with attempt, reason, delay, method and url', async () => {
  const logger = memoryLogger();
  let calls = 0;
  const handler = build({ maxRetries: 2, backoffFactor: 1 }, async () => (++calls === 1 ? Promise.reject(new RelayError('ERR_UPSTREAM_RESET', 'socket hang up')) : answer(calls === 2 ? 504 : 200)), logger);
  await handler(fakeRequest({ path: '/api/v1/x?y=1' }));
  assert.equal(
    logger.lines.map((line) => [line.level, line.message, line.fields]),
    [
      ['info', 'retrying upstream request', { method: 'GET', url: 'http://localhost/api/v1/x', attempt: 1, reason: 'ERR_UPSTREAM_RESET', delay: 1, retryAfter: false }],
      ['info', 'retrying upstream request', { method: 'GET', url: 'http://localhost/api/v1/x', attempt: 2, reason: 'status 504', delay: 2, retryAfter: false }],
    ],
  );
});

test('bad options throw when the factory is called, naming the option', () => {
  const cases: Array<[RetryOptions, RegExp, ErrorConstructor]> = [
    [{ maxRetries: -1 }, /maxRetries/, RangeError],
    [{ maxRetries: 1.5 }, /maxRetries/, RangeError],
    [{ backoffFactor: -5 }, /backoffFactor/, RangeError],
    [{ backoffFactor: Number.NaN }, /backoffFactor/, RangeError],
    [{ maxBackoff: Infinity }, /maxBackoff/, RangeError],
    [{ jitter: 'yes' as unknown as boolean }, /jitter/, TypeError],
    [{ statuses: 503 as unknown as number[] }, /statuses/, TypeError],
    [{ statuses: [99] }, /statuses/, RangeError],
    [{ errors: ['ECONNREFUSED' as never] }, /errors/, RangeError],
    [{ errors: ['ERR_CLIENT_ABORTED'] }, /errors/, RangeError],
    [{ methods: ['GET', 'BAD METHOD'] }, /methods/, TypeError],
    [{ maxReplayBytes: -1 }, /maxReplayBytes/, RangeError],
    [{ retryAfter: -1 }, /retryAfter/, RangeError],
    [{ deadline: -1 }, /deadline/, RangeError],
  ];
  for (const [options, name, kind] of cases) {
    try {
      retry(options);
      assert.unreachable(`${JSON.stringify(options)} should throw`);
    } catch (error) {
      assert.instance(error, kind, `${JSON.stringify(options)}: ${(error as Error).message}`);
      assert.match((error as Error).message, name);
    }
  }
  assert.is(retry({ methods: ['post'], retryAfter: false }).name, 'retry');
});

test('a body already consumed before the stage is an error, never an empty retry', async () => {
  let calls = 0;
  const handler = build({ maxRetries: 1, methods: ['PUT'] }, async () => {
    calls++;
    return answer(200);
  });
  const body = Readable.from(['gone']);
  body.resume();
  await new Promise((resolve) => body.once('end', resolve));
  try {
    await handler(fakeRequest({ method: 'PUT', body }));
    assert.unreachable('should reject');
  } catch (error) {
    assert.is((error as RelayError).code, 'ERR_INTERNAL');
  }
  assert.is(calls, 0);
});

test.run();
