// End-to-end: headers() in a real relay in front of a real upstream, with a real client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, sendRaw, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay, type RelayOptions } from '@relay/core';
import { headers } from '../src/index.js';

let upstream: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

async function front(options: Partial<RelayOptions>): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, ...options }));
  fronts.push(served);
  return served;
}

/** Every value the upstream received for `name`, in order, from its raw header list. */
function rawValues(rawHeaders: string[], name: string): string[] {
  const values: string[] = [];
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (rawHeaders[index]!.toLowerCase() === name) values.push(rawHeaders[index + 1]!);
  }
  return values;
}

test.before(async () => {
  upstream = await startUpstream((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('X-Debug-Info', 'pod=auth-7f9c');
    res.setHeader('X-Unlisted-Response', 'internal');
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.setHeader('Via', '1.1 upstream-sidecar');
    res.end(JSON.stringify({ url: req.url }));
  });
});

test.after(async () => {
  await Promise.all(fronts.map((served) => served.close()));
  await upstream.close();
});

test('recipe, service-to-service auth: the client Authorization is dropped and the service token set, never forged', async () => {
  const served = await front({
    mountPath: '/internal',
    stages: [headers({ dropRequest: ['authorization'], extraRequest: { 'X-Service-Auth': 'svc-secret' } })],
  });
  const before = upstream.requests.length;
  const response = await sendRaw(
    served.port,
    'GET /internal/users HTTP/1.1\r\nHost: gw.example\r\nAuthorization: Bearer client-token\r\n' +
      'X-SERVICE-AUTH: forged-upper\r\nx-service-auth: forged-lower\r\nConnection: close\r\n\r\n',
  );
  assert.ok(response.startsWith('HTTP/1.1 200 '), response.split('\r\n')[0]);
  const seen = upstream.requests[before]!;
  assert.is(seen.url, '/users');
  assert.equal(rawValues(seen.rawHeaders, 'authorization'), [], 'client Authorization never reaches the upstream');
  assert.equal(rawValues(seen.rawHeaders, 'x-service-auth'), ['svc-secret'], 'exactly one value: ours');
  assert.is(seen.headers['x-forwarded-host'], 'gw.example', 'forwarding headers still set by core');
});

test('recipe, allow-list mode: an unlisted header is dropped in each direction; Host and X-Forwarded-* still reach the upstream', async () => {
  const served = await front({
    mountPath: '/api',
    stages: [headers({ allowRequest: ['authorization', 'content-type'], allowResponse: ['content-type', 'set-cookie'] })],
  });
  const before = upstream.requests.length;
  const response = await fetchRaw(`${served.url}/api/orders`, {
    method: 'POST',
    headers: { Authorization: 'Bearer t', 'Content-Type': 'application/json', 'X-Unlisted': 'client-only', Cookie: 'sid=1' },
    body: '{"n":1}',
  });
  assert.is(response.status, 200);
  const seen = upstream.requests[before]!;
  assert.is(seen.headers.authorization, 'Bearer t');
  assert.is(seen.headers['content-type'], 'application/json');
  assert.is(seen.headers['x-unlisted'], undefined, 'request: unlisted header dropped');
  assert.is(seen.headers.cookie, undefined, 'request: cookie not listed, dropped');
  assert.is(seen.headers.host, `127.0.0.1:${upstream.port}`, 'Host kept: routing works');
  assert.is(seen.headers['x-forwarded-proto'], 'http');
  assert.is(seen.headers['x-forwarded-prefix'], '/api');
  assert.ok(seen.headers['x-forwarded-for']?.includes('127.0.0.1'));
  assert.is(seen.body.toString(), '{"n":1}', 'the body arrived whole (Content-Length kept)');
  assert.is(response.headers['x-unlisted-response'], undefined, 'response: unlisted header dropped');
  assert.is(response.headers['x-debug-info'], undefined);
  assert.is(response.headers['content-type'], 'application/json');
  assert.equal(response.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
  assert.is(JSON.parse(response.text).url, '/orders');
});

test('recipe, drop lists: X-Internal-Token never leaves, X-Debug-Info never comes back', async () => {
  const served = await front({ stages: [headers({ dropRequest: ['x-internal-token'], dropResponse: ['X-Debug-Info'] })] });
  const before = upstream.requests.length;
  const response = await fetchRaw(`${served.url}/x`, { headers: { 'X-Internal-Token': 'secret' } });
  assert.is(upstream.requests[before]!.headers['x-internal-token'], undefined);
  assert.is(response.headers['x-debug-info'], undefined);
  assert.is(response.headers['x-unlisted-response'], 'internal', 'other headers pass');
});

test('a per-request token from an async function reaches the upstream, a new one each request', async () => {
  let issued = 0;
  const served = await front({
    stages: [headers({ extraRequest: { authorization: async () => `Bearer svc-${++issued}` } })],
  });
  const before = upstream.requests.length;
  await fetchRaw(`${served.url}/a`, { headers: { Authorization: 'Bearer forged' } });
  await fetchRaw(`${served.url}/b`);
  assert.equal(
    upstream.requests.slice(before).map((seen) => seen.headers.authorization),
    ['Bearer svc-1', 'Bearer svc-2'],
  );
});

test('a function value with CR/LF is a 500 ERR_INTERNAL with a log line, never a split header; the relay keeps serving', async () => {
  const logger = memoryLogger();
  let bad = true;
  const served = await front({
    logger,
    stages: [headers({ extraRequest: { 'x-token': () => (bad ? 'tok\r\nx-injected: 1' : 'tok') } })],
  });
  const before = upstream.requests.length;
  const failed = await fetchRaw(`${served.url}/x`);
  assert.is(failed.status, 500);
  assert.ok(failed.text.includes('ERR_INTERNAL'), failed.text);
  assert.not.ok(failed.text.includes('x-token'), 'no detail in the client body');
  assert.is(upstream.requests.length, before, 'nothing reached the upstream');
  const line = logger.lines.find((entry) => entry.level === 'error' && entry.fields.code === 'ERR_INTERNAL');
  assert.ok(line !== undefined, 'logged');
  assert.match(String(line!.fields.error), /extraRequest\["x-token"\]/);
  assert.not.match(String(line!.fields.error), /x-injected/, 'the value is not logged');
  bad = false;
  const after = await fetchRaw(`${served.url}/x`);
  assert.is(after.status, 200);
  assert.is(upstream.requests[before]!.headers['x-token'], 'tok');
  assert.is(upstream.requests[before]!.headers['x-injected'], undefined);
});

test('forwarded and via: the upstream sees this hop, the client sees the relay in Via', async () => {
  const served = await front({ stages: [headers({ forwarded: true, via: true })] });
  const before = upstream.requests.length;
  const response = await fetchRaw(`${served.url}/x`, { headers: { Via: '1.1 client-proxy' } });
  const seen = upstream.requests[before]!;
  assert.is(seen.headers.forwarded, `for=127.0.0.1;host="127.0.0.1:${served.port}";proto=http`);
  assert.is(seen.headers.via, '1.1 client-proxy, 1.1 relay');
  assert.is(response.headers.via, '1.1 upstream-sidecar, 1.1 relay');
});

test.run();
