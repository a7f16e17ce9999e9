// Unit tests of headers(): a fake `next`, stageContext(), no sockets.
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientInfo, RelayError, stageContext, type Handler, type HeaderRecord, type ProxyRequest, type ProxyResponse } from '@relay/core';
import { alwaysAllowedRequestHeaders, headers, type HeadersOptions } from '../src/index.js';

function fakeRequest(requestHeaders: HeaderRecord = {}, facts: Partial<{ address: string; host: string; httpVersion: string }> = {}): ProxyRequest {
  const incoming = { httpVersion: facts.httpVersion ?? '1.1' } as IncomingMessage;
  return {
    method: 'GET',
    path: '/x',
    headers: requestHeaders,
    body: null,
    replayBody: null,
    attempt: 1,
    client: new ClientInfo(
      { address: facts.address ?? '203.0.113.7', scheme: 'https', host: facts.host ?? 'gw.example', mountPath: '/api', originalUrl: '/api/x' },
      incoming,
    ),
  };
}

/** A fake upstream: records each request it is given and answers with `responseHeaders`. */
function fakeNext(responseHeaders: HeaderRecord = {}, body: ProxyResponse['body'] = null): Handler & { seen: ProxyRequest[] } {
  const seen: ProxyRequest[] = [];
  const next = async (request: ProxyRequest): Promise<ProxyResponse> => {
    seen.push(request);
    return { status: 200, statusMessage: '', headers: { ...responseHeaders }, body };
  };
  return Object.assign(next, { seen });
}

function build(options: HeadersOptions, next: Handler): Handler {
  return headers(options).wrap(next, stageContext());
}

test('extraRequest replaces a client-sent header of the same name; option names are case-insensitive', async () => {
  const next = fakeNext();
  const handler = build({ extraRequest: { 'X-Service-Auth': 'svc-token', 'X-Service': ['main-app', 'v2'] } }, next);
  await handler(fakeRequest({ 'x-service-auth': 'forged', accept: 'text/html' }));
  const sent = next.seen[0]!.headers;
  assert.is(sent['x-service-auth'], 'svc-token');
  assert.equal(sent['x-service'], ['main-app', 'v2']);
  assert.is(sent.accept, 'text/html', 'other headers untouched');
  assert.not.ok('X-Service-Auth' in sent, 'only the lowercase name is in the record');
});

test('a function value runs per request with the request as the stage received it; null removes the header', async () => {
  const next = fakeNext();
  let counter = 0;
  const handler = build(
    {
      dropRequest: ['authorization'],
      extraRequest: {
        'x-request-token': () => `token-${++counter}`,
        'x-user': (request) => (request.headers.authorization === undefined ? null : `from ${String(request.headers.authorization)}`),
        'x-optional': () => undefined,
      },
    },
    next,
  );
  await handler(fakeRequest({ authorization: 'Bearer client', 'x-optional': 'forged' }));
  await handler(fakeRequest({ 'x-user': 'forged' }));
  const [first, second] = next.seen.map((request) => request.headers);
  assert.is(first!['x-request-token'], 'token-1');
  assert.is(second!['x-request-token'], 'token-2');
  assert.is(first!['x-user'], 'from Bearer client', 'the function saw the client header the drop list removes');
  assert.is(first!.authorization, undefined, 'and the drop list still removed it');
  assert.is(first!['x-optional'], undefined, 'undefined: the client value does not pass either');
  assert.is(second!['x-user'], undefined, 'null: the forged value is removed');
});

test('an async function value is awaited before the request goes on', async () => {
  const next = fakeNext();
  const handler = build(
    {
      extraRequest: {
        'x-a': async () => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          return 'async-token';
        },
        'x-b': 'fixed',
      },
    },
    next,
  );
  await handler(fakeRequest({ 'x-a': 'forged' }));
  assert.is(next.seen[0]!.headers['x-a'], 'async-token');
  assert.is(next.seen[0]!.headers['x-b'], 'fixed');
});

test('dropRequest and dropResponse remove names in any case', async () => {
  const next = fakeNext({ 'x-debug-info': 'internal', 'content-type': 'text/plain' });
  const handler = build({ dropRequest: ['X-Internal-Token', 'Cookie'], dropResponse: ['X-DEBUG-INFO'] }, next);
  const response = await handler(fakeRequest({ 'x-internal-token': 'secret', cookie: 'a=1', accept: '*/*' }));
  assert.equal(next.seen[0]!.headers, { accept: '*/*' });
  assert.equal(response.headers, { 'content-type': 'text/plain' });
});

test('allow lists keep only the listed names, plus Host, the forwarding headers and body framing', async () => {
  const next = fakeNext({ 'content-type': 'text/plain', 'content-length': '2', 'set-cookie': ['a=1'], 'x-unlisted': 'no', server: 'upstream/1.0' });
  const handler = build(
    { allowRequest: ['Authorization', 'content-type'], allowResponse: ['content-type', 'set-cookie'], extraRequest: { 'x-extra': 'kept' } },
    next,
  );
  const client: HeaderRecord = {
    authorization: 'Bearer t',
    'content-type': 'application/json',
    'content-length': '2',
    'x-unlisted': 'dropped',
    cookie: 'a=1',
    host: 'upstream:8000',
    'x-forwarded-for': '203.0.113.7',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'gw.example',
    'x-forwarded-prefix': '/api',
  };
  const response = await handler(fakeRequest(client));
  const sent = next.seen[0]!.headers;
  assert.equal(Object.keys(sent).sort(), [
    'authorization',
    'content-length',
    'content-type',
    'host',
    'x-extra',
    'x-forwarded-for',
    'x-forwarded-host',
    'x-forwarded-prefix',
    'x-forwarded-proto',
  ]);
  assert.equal(Object.keys(response.headers).sort(), ['content-length', 'content-type', 'set-cookie']);
  assert.ok(alwaysAllowedRequestHeaders.includes('host'));
});

test('the input record is never changed when the stage copies it, so a retry can send the same request again', async () => {
  const next = fakeNext({ via: '1.1 upstream-proxy' });
  const handler = build({ via: true, forwarded: true, allowRequest: ['accept', 'via', 'forwarded'] }, next);
  const request = fakeRequest({ accept: '*/*', via: '1.1 edge', forwarded: 'for=198.51.100.1', 'x-unlisted': 'y' });
  const before = { ...request.headers };
  await handler(request);
  await handler(request);
  assert.equal(request.headers, before, 'input untouched');
  assert.is(next.seen[1]!.headers.via, '1.1 edge, 1.1 relay', 'one entry per pass, not two');
  assert.is(next.seen[1]!.headers.forwarded, 'for=198.51.100.1, for=203.0.113.7;host=gw.example;proto=https');
});

test('Forwarded and Via are off by default', async () => {
  const next = fakeNext();
  const response = await build({ dropRequest: ['x-a'] }, next)(fakeRequest({ accept: '*/*' }));
  assert.is(next.seen[0]!.headers.forwarded, undefined);
  assert.is(next.seen[0]!.headers.via, undefined);
  assert.is(response.headers.via, undefined);
});

test('forwarded: quoted IPv6 and host:port, "unknown" without an address; "replace" discards the client value', async () => {
  const next = fakeNext();
  await build({ forwarded: 'replace' }, next)(fakeRequest({ forwarded: 'for=evil' }, { address: '2001:db8::1', host: 'gw.example:8443' }));
  await build({ forwarded: 'append' }, next)(fakeRequest({}, { address: '', host: '' }));
  assert.is(next.seen[0]!.headers.forwarded, 'for="[2001:db8::1]";host="gw.example:8443";proto=https');
  assert.is(next.seen[1]!.headers.forwarded, 'for=unknown;proto=https');
});

test('via: the client protocol version on the request, 1.1 on the response, a custom pseudonym', async () => {
  const next = fakeNext({ via: '1.0 cache' });
  const response = await build({ via: 'edge-1' }, next)(fakeRequest({}, { httpVersion: '1.0' }));
  assert.is(next.seen[0]!.headers.via, '1.0 edge-1');
  assert.is(response.headers.via, '1.0 cache, 1.1 edge-1');
  await build({ via: true }, next)(fakeRequest({}, { httpVersion: '2.0' }));
  assert.is(next.seen[1]!.headers.via, '2 relay');
});

test('extraResponse: fixed values and functions of the request and response; set-cookie stays an array', async () => {
  const next = fakeNext({ 'x-upstream-id': 'abc', 'cache-control': 'public' });
  const handler = build(
    {
      extraResponse: {
        'Cache-Control': 'no-store',
        'set-cookie': 'relay=1; Path=/',
        'x-echo': (request, response) => `${request.method} ${response.status} ${String(response.headers['x-upstream-id'])}`,
      },
    },
    next,
  );
  const response = await handler(fakeRequest());
  assert.is(response.headers['cache-control'], 'no-store');
  assert.equal(response.headers['set-cookie'], ['relay=1; Path=/']);
  assert.is(response.headers['x-echo'], 'GET 200 abc');
});

test('invalid names and values are rejected when the stage is built, naming the option', () => {
  const cases: Array<[HeadersOptions, RegExp]> = [
    [{ extraRequest: { 'bad name': 'x' } }, /extraRequest\["bad name"\] is not a valid header name/],
    [{ extraRequest: { 'x-a:': 'x' } }, /extraRequest\["x-a:"\]/],
    [{ extraRequest: { 'x-a': 'one\r\nx-injected: yes' } }, /extraRequest\["x-a"\].*CR, LF/],
    [{ extraResponse: { 'x-a': ['ok', 'bad\n'] } }, /extraResponse\["x-a"\]/],
    [{ extraRequest: { 'x-a': 42 as unknown as string } }, /extraRequest\["x-a"\] must be a string/],
    [{ extraRequest: { 'Transfer-Encoding': 'chunked' } }, /Transfer-Encoding.*cannot be set/],
    [{ extraResponse: { 'content-length': '5' } }, /content-length.*cannot be set/],
    [{ extraRequest: { 'X-A': '1', 'x-a': '2' } }, /twice/],
    [{ dropRequest: ['ok', 'not ok'] }, /dropRequest\[1\] must be a header name/],
    [{ allowResponse: 'content-type' as unknown as string[] }, /allowResponse must be an array/],
    [{ forwarded: 'yes' as 'append' }, /forwarded must be/],
    [{ via: 'my host' }, /via must be a pseudonym/],
    [{ via: true, extraRequest: { via: '1.1 x' } }, /extraRequest\["via"\] conflicts with the via option/],
    [{ extraRequets: {} } as unknown as HeadersOptions, /unknown option "extraRequets"/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => headers(options), message, JSON.stringify(options));
  }
  assert.throws(() => headers({ forwarded: 'yes' as 'append' }), (error: Error) => error instanceof RangeError);
  assert.throws(() => headers({ extraRequest: { 'bad name': 'x' } }), (error: Error) => error instanceof TypeError);
});

test('a function returning CR/LF fails the request with ERR_INTERNAL before anything is sent; the value is not in the message', async () => {
  const next = fakeNext();
  const handler = build({ extraRequest: { 'x-token': () => 'secret-value\r\nx-injected: 1' } }, next);
  const error = await handler(fakeRequest()).then(
    () => null,
    (reason: unknown) => reason,
  );
  assert.instance(error, RelayError);
  assert.is((error as RelayError).code, 'ERR_INTERNAL');
  assert.ok((error as RelayError).message.includes('extraRequest["x-token"]'));
  assert.not.ok((error as RelayError).message.includes('secret-value'));
  assert.is(next.seen.length, 0, 'next was never called');
});

test('a function that throws or rejects becomes ERR_INTERNAL naming the header, with the cause kept', async () => {
  const boom = new Error('token service down');
  for (const compute of [
    () => {
      throw boom;
    },
    async () => {
      throw boom;
    },
  ]) {
    const error = (await build({ extraRequest: { 'x-token': compute } }, fakeNext())(fakeRequest()).catch((reason: unknown) => reason)) as RelayError;
    assert.is(error.code, 'ERR_INTERNAL');
    assert.match(error.message, /extraRequest\["x-token"\] function failed: token service down/);
    assert.is(error.cause, boom);
  }
});

test('a bad response function value fails with ERR_INTERNAL and destroys the upstream body', async () => {
  const body = new PassThrough();
  const handler = build({ extraResponse: { 'x-bad': () => 'a\nb' } }, fakeNext({}, body));
  const error = (await handler(fakeRequest()).catch((reason: unknown) => reason)) as RelayError;
  assert.is(error.code, 'ERR_INTERNAL');
  assert.ok(body.destroyed, 'the upstream body was released');
});

test.run();
