// headerRules() and locationRewriter() (one value, or a whole record with .headers) are the
// headers() and rewriteLocation() stages' own rules: one table of cases per function, run through
// the stage and through the plain function.
import type { IncomingMessage } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientInfo, createRelay, stageContext, type HeaderRecord, type ProxyRequest, type ProxyResponse } from '@relay/core';
import { headerRules, headers, locationRewriter, rewriteLocation, type HeadersOptions, type RewriteLocationOptions } from '../src/index.js';

const hop = { address: '2001:db8::7', host: 'gw.example:8443', scheme: 'https' as const, httpVersion: '2.0' };

function proxyRequest(requestHeaders: HeaderRecord, host = hop.host, mountPath = '/auth'): ProxyRequest {
  return {
    method: 'GET',
    path: '/x',
    headers: requestHeaders,
    body: null,
    replayBody: null,
    attempt: 1,
    client: new ClientInfo(
      { address: hop.address, scheme: hop.scheme, host, mountPath, originalUrl: `${mountPath}/x` },
      { httpVersion: hop.httpVersion } as IncomingMessage,
    ),
  };
}

interface HeaderCase {
  name: string;
  options: HeadersOptions;
  request: HeaderRecord;
  response: HeaderRecord;
  expectedRequest: HeaderRecord;
  expectedResponse: HeaderRecord;
}

const headerCases: HeaderCase[] = [
  {
    name: 'drop lists and fixed extra headers, both directions',
    options: { dropRequest: ['Authorization'], extraRequest: { 'X-Service': 'gw' }, dropResponse: ['x-powered-by'], extraResponse: { 'x-frame-options': 'DENY' } },
    request: { authorization: 'Bearer t', accept: 'text/html', 'x-service': 'client-sent' },
    response: { 'x-powered-by': 'Express', 'content-type': 'text/html', 'set-cookie': ['a=1', 'b=2'] },
    expectedRequest: { accept: 'text/html', 'x-service': 'gw' },
    expectedResponse: { 'content-type': 'text/html', 'set-cookie': ['a=1', 'b=2'], 'x-frame-options': 'DENY' },
  },
  {
    name: 'allow lists keep the always-allowed names; extra headers survive them',
    options: { allowRequest: ['accept'], allowResponse: ['content-type'], extraResponse: { 'cache-control': ['no-store', 'private'] } },
    request: { accept: '*/*', cookie: 'sid=1', host: 'up:8000', 'x-forwarded-for': '198.51.100.1', 'content-length': '0' },
    response: { 'content-type': 'text/plain', 'content-length': '5', server: 'internal', 'set-cookie': ['a=1'] },
    expectedRequest: { accept: '*/*', host: 'up:8000', 'x-forwarded-for': '198.51.100.1', 'content-length': '0' },
    expectedResponse: { 'content-type': 'text/plain', 'content-length': '5', 'cache-control': ['no-store', 'private'] },
  },
  {
    name: 'Forwarded appended, Via with the client protocol on the request and 1.1 on the response',
    options: { forwarded: true, via: 'edge-1' },
    request: { forwarded: 'for=198.51.100.1', via: '1.1 cdn' },
    response: { via: '1.0 origin' },
    expectedRequest: { forwarded: 'for=198.51.100.1, for="[2001:db8::7]";host="gw.example:8443";proto=https', via: '1.1 cdn, 2 edge-1' },
    expectedResponse: { via: '1.0 origin, 1.1 edge-1' },
  },
  {
    name: 'Forwarded replaced',
    options: { forwarded: 'replace' },
    request: { forwarded: 'for=evil' },
    response: { 'content-type': 'text/plain' },
    expectedRequest: { forwarded: 'for="[2001:db8::7]";host="gw.example:8443";proto=https' },
    expectedResponse: { 'content-type': 'text/plain' },
  },
  {
    name: 'no rules: unchanged',
    options: {},
    request: { accept: '*/*' },
    response: { 'set-cookie': ['a=1'] },
    expectedRequest: { accept: '*/*' },
    expectedResponse: { 'set-cookie': ['a=1'] },
  },
];

async function throughStage(options: HeadersOptions, requestHeaders: HeaderRecord, responseHeaders: HeaderRecord): Promise<[HeaderRecord, HeaderRecord]> {
  let sent: HeaderRecord = {};
  const handler = headers(options).wrap(async (request): Promise<ProxyResponse> => {
    sent = request.headers;
    return { status: 200, statusMessage: '', headers: structuredClone(responseHeaders), body: null };
  }, stageContext());
  const response = await handler(proxyRequest(structuredClone(requestHeaders)));
  return [sent, response.headers];
}

/** A WHATWG Headers object as a record, to compare with the stage's. */
function record(from: Headers): HeaderRecord {
  const result: HeaderRecord = {};
  for (const [name, value] of from) if (name !== 'set-cookie') result[name] = value;
  if (from.getSetCookie().length > 0) result['set-cookie'] = from.getSetCookie();
  return result;
}

function toHeaders(from: HeaderRecord): Headers {
  const result = new Headers();
  for (const [name, value] of Object.entries(from)) for (const item of typeof value === 'string' ? [value] : value!) result.append(name, item);
  return result;
}

/** Headers joins repeated values of a name into one line (set-cookie aside). */
function joined(from: HeaderRecord): HeaderRecord {
  return Object.fromEntries(Object.entries(from).map(([name, value]) => [name, name === 'set-cookie' || typeof value === 'string' ? value : value!.join(', ')]));
}

for (const testCase of headerCases) {
  test(`headers: same result both ways: ${testCase.name}`, async () => {
    const [stageRequest, stageResponse] = await throughStage(testCase.options, testCase.request, testCase.response);
    assert.equal(stageRequest, testCase.expectedRequest, 'stage, request');
    assert.equal(stageResponse, testCase.expectedResponse, 'stage, response');
    const rules = headerRules(testCase.options);
    const input = structuredClone(testCase.request);
    assert.equal(rules.request(input, hop), testCase.expectedRequest, 'plain record, request');
    assert.equal(input, testCase.request, 'the input record is not modified');
    assert.equal(rules.response(testCase.response), testCase.expectedResponse, 'plain record, response');
    assert.equal(record(rules.request(toHeaders(testCase.request), hop)), joined(testCase.expectedRequest), 'Headers, request');
    assert.equal(record(rules.response(toHeaders(testCase.response))), joined(testCase.expectedResponse), 'Headers, response');
  });
}

test('headerRules: a plain record in any case and with numbers is read as node:http would', () => {
  const rules = headerRules({ dropResponse: ['server'] });
  const result = rules.response({ 'Content-Length': 5, Server: 'x', 'Set-Cookie': 'a=1', 'x-a': '1', 'X-A': '2', gone: undefined });
  assert.equal(result, { 'content-length': '5', 'set-cookie': ['a=1'], 'x-a': ['1', '2'] });
});

test('headerRules: options are checked as headers() checks them; function values and a missing hop are refused', () => {
  assert.throws(() => headerRules({ extraRequest: { 'x-bad': 'a\r\nb' } }), /headers: extraRequest\["x-bad"\] must be a string/);
  assert.throws(() => headerRules({ extraRequest: { 'content-length': '1' } }), /cannot be set by a stage/);
  assert.throws(() => headerRules({ dropReqest: ['x'] } as HeadersOptions), /headerRules: unknown option "dropReqest" \(did you mean "dropRequest"\? expected one of .*dropRequest/);
  assert.throws(() => headerRules({ extraRequest: { 'x-token': () => 't' } }), /extraRequest\["x-token"\] is a function, which only the headers\(\) stage can call/);
  assert.throws(() => headerRules({ forwarded: true }).request({}), /forwarded needs the client of this hop/);
  assert.equal(headerRules({ via: true }).request({}), { via: '1.1 relay' }, 'no hop: Via says 1.1');
});

interface LocationCase {
  location: string;
  options?: RewriteLocationOptions;
  expected: string;
  host?: string;
}

const locationCases: LocationCase[] = [
  { location: 'http://auth.internal:8000/api/v1/dashboard?tab=1#top', expected: 'https://gw.example/auth/dashboard?tab=1#top' },
  { location: 'http://AUTH.internal:8000/api/v1', expected: 'https://gw.example/auth' },
  { location: '//auth.internal:8000/api/v1/x', expected: 'https://gw.example/auth/x' },
  { location: '/api/v1/login', expected: '/auth/login' },
  { location: '/api/v1/login', options: { relative: false }, expected: '/api/v1/login' },
  { location: '/apiary', expected: '/apiary' },
  { location: 'http://elsewhere.example/api/v1/x', expected: 'http://elsewhere.example/api/v1/x' },
  { location: 'https://auth.internal:8000/api/v1/x', expected: 'https://auth.internal:8000/api/v1/x' },
  { location: 'http://auth.internal:8000/other', expected: 'http://auth.internal:8000/other' },
  { location: 'relative/path', expected: 'relative/path' },
  { location: 'http://auth.internal:8000/api/v1/x', options: { publicOrigin: 'https://api.example.com' }, expected: 'https://api.example.com/auth/x' },
  { location: 'http://auth.internal:8000/api/v1/x', host: 'evil@x', expected: '/auth/x' },
  { location: '/api/v1//evil.example/x', expected: '/auth//evil.example/x' },
];

const target = createRelay({ targetBaseUrl: 'http://auth.internal:8000', upstreamPrefix: '/api/v1' }).target;

for (const { location, options = {}, expected, host = 'gw.example' } of locationCases) {
  test(`location: same result both ways: ${location} ${JSON.stringify(options)} host ${host}`, async () => {
    const stage = rewriteLocation(options).wrap(
      async () => ({ status: 302, statusMessage: '', headers: { location, 'content-location': location }, body: null }),
      stageContext({ target }),
    );
    const fromStage = (await stage(proxyRequest({}, host))).headers;
    const rewrite = locationRewriter({ targetBaseUrl: 'http://auth.internal:8000', upstreamPrefix: '/api/v1', mountPath: '/auth', ...options });
    assert.is(fromStage.location, expected, 'stage');
    assert.is(fromStage['content-location'], expected, 'stage, Content-Location');
    assert.is(rewrite(location, { scheme: 'https', host }), expected, 'plain');
    assert.equal(rewrite.headers({ location, 'content-location': location }, { scheme: 'https', host }), fromStage, 'plain, whole record');
  });
}

test('locationRewriter(...).headers: Location, Content-Location and the URL of Refresh, as the stage; the input kept', async () => {
  const upstream = {
    'content-type': 'text/plain',
    location: 'http://auth.internal:8000/api/v1/items/7',
    'content-location': ['/api/v1/items/7', 'http://elsewhere.example/x'],
    refresh: '5; URL="http://auth.internal:8000/api/v1/items"',
  };
  const expected = {
    'content-type': 'text/plain',
    location: 'https://gw.example/auth/items/7',
    'content-location': ['/auth/items/7', 'http://elsewhere.example/x'],
    refresh: '5; URL="https://gw.example/auth/items"',
  };
  const stage = rewriteLocation().wrap(async () => ({ status: 201, statusMessage: '', headers: structuredClone(upstream), body: null }), stageContext({ target }));
  assert.equal((await stage(proxyRequest({}, 'gw.example'))).headers, expected, 'stage');
  const rewrite = locationRewriter({ targetBaseUrl: 'http://auth.internal:8000', upstreamPrefix: '/api/v1', mountPath: '/auth' });
  const input = structuredClone(upstream);
  assert.equal(rewrite.headers(input, { scheme: 'https', host: 'gw.example' }), expected, 'plain');
  assert.equal(input, upstream, 'the input record is not modified');
  const untouched = { location: 'http://elsewhere.example/x', refresh: '5', 'content-length': 3 };
  assert.is(rewrite.headers(untouched), untouched, 'nothing to rewrite: the record itself');
  assert.equal(rewrite.headers({ refresh: '0; url=/api/v1/items' }), { refresh: '0; url=/auth/items' }, 'no client: path-absolute');
  assert.throws(() => rewrite.headers(null as never), /locationRewriter: headers must be a header record/);
  assert.throws(() => rewrite.headers({}, { shceme: 'https', host: 'x' } as never), /locationRewriter: client: unknown option "shceme"/);
});

test('locationRewriter: without a client an absolute location becomes path-absolute; options are checked', () => {
  const rewrite = locationRewriter({ targetBaseUrl: 'http://auth.internal:8000/api', mountPath: '/auth/' });
  assert.is(rewrite('http://auth.internal:8000/api/x?y=1'), '/auth/x?y=1');
  assert.is(rewrite('/api'), '/auth');
  assert.throws(() => locationRewriter({ targetBaseUrl: 'ftp://x' }), /targetBaseUrl must use http: or https:/);
  assert.throws(() => locationRewriter({ targetBaseUrl: 'http://x', mountPath: 'auth' }), /mountPath must start with "\/"/);
  assert.throws(() => locationRewriter({ targetBaseUrl: 'http://x', publicOrigin: 'https://x/app' }), /publicOrigin must be an http\(s\) origin/);
  assert.throws(() => locationRewriter({ targetBaseUrl: 'http://x', mountpath: '/a' } as never), /locationRewriter: unknown option "mountpath" \(did you mean "mountPath"\? expected one of .*mountPath/);
  assert.throws(() => rewrite(undefined as never), /the location must be a string/);
});

test.run();
