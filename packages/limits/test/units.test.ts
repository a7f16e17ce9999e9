import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientInfo, stageContext, type ClientFacts, type ProxyRequest } from '@relay/core';
import { addressKey, compileKey, createLimiter, memoryStore, policyItem, rateLimit, SlotTable, takeToken } from '../src/index.js';

// Cast: core is gaining client facts (the local port) these tests do not need.
function clientInfo(address: string): ClientInfo {
  return new ClientInfo({ address, scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/x' } as ClientFacts);
}

function fakeRequest(address = '127.0.0.1', headers: ProxyRequest['headers'] = {}, attempt = 1, client?: ClientInfo): ProxyRequest {
  const info = client ?? clientInfo(address);
  return { method: 'GET', path: '/x?q=1', headers, body: null, replayBody: null, attempt, client: info };
}

test('client addresses: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
  assert.is(addressKey('10.0.0.7'), '10.0.0.7');
  assert.is(addressKey('::ffff:10.0.0.7'), '10.0.0.7');
  assert.is(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.is(addressKey('2001:DB8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.is(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.is(addressKey('::1'), '0:0:0:0::/64');
  assert.is(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
});

test('keys: route, path without query, header, cookie; a long value is hashed', () => {
  assert.is(compileKey('route', 'k')(fakeRequest()), 'route');
  assert.is(compileKey('path', 'k')(fakeRequest()), '/x');
  assert.is(compileKey({ header: 'X-Api-Key' }, 'k')(fakeRequest('1.2.3.4', { 'x-api-key': 'abc' })), 'h:abc');
  assert.is(compileKey({ header: 'x-api-key' }, 'k')(fakeRequest('1.2.3.4')), 'a:1.2.3.4');
  assert.is(compileKey({ cookie: 'sid' }, 'k')(fakeRequest('1.2.3.4', { cookie: 'a=b; sid=s1; c=d' })), 'c:s1');
  const long = compileKey({ header: 'x-api-key' }, 'k')(fakeRequest('1.2.3.4', { 'x-api-key': 'k'.repeat(8000) }))!;
  assert.ok(long.length < 60, 'an 8 KB key is stored as a hash');
  assert.throws(() => compileKey({ header: 'bad header' }, 'rateLimit: key'), /rateLimit: key must be/);
});

test('takeToken: GCRA with exact numbers, refill over time', () => {
  const policy = { name: 'p', points: 4, duration: 1000, burst: 4 };
  let tat = 0;
  const remaining: number[] = [];
  for (let i = 0; i < 5; i++) {
    const step = takeToken(policy, tat, 10_000);
    remaining.push(step.decision.allowed ? step.decision.remaining : -1);
    tat = step.tat;
  }
  assert.equal(remaining, [3, 2, 1, 0, -1]);
  const refused = takeToken(policy, tat, 10_000).decision;
  assert.is(refused.retryAfterMs, 250);
  assert.is(refused.resetMs, 1000);
  assert.is(takeToken(policy, tat, 10_250).decision.allowed, true, 'one token per 250 ms');
  assert.is(takeToken(policy, tat, 11_000).decision.remaining, 3, 'full again after the duration');
});

test('memoryStore stays within maxKeys: full buckets first, then the oldest keys', () => {
  const bucket = memoryStore({ maxKeys: 10 }).bind({ name: 'p', points: 1, duration: 60_000, burst: 1 });
  for (let i = 0; i < 100; i++) assert.is((bucket.take(`k${i}`) as { allowed: boolean }).allowed, true);
  assert.is((bucket.take('k99') as { allowed: boolean }).allowed, false, 'a recent key is still counted');
  assert.throws(() => memoryStore({ maxKeys: 0 }), /memoryStore: maxKeys/);
  assert.throws(() => memoryStore({ maxKey: 3 } as never), /did you mean "maxKeys"/);
});

test('createLimiter: the decision as a plain function, with its header values', async () => {
  const logins = createLimiter({ name: 'login', points: 2, duration: 60_000 });
  assert.is((await logins.consume('user:ann')).allowed, true);
  assert.is((await logins.consume('user:ann')).allowed, true);
  const refused = await logins.consume('user:ann');
  assert.is(refused.allowed, false);
  assert.equal(logins.headers(refused), { 'ratelimit-policy': '"login";q=2;w=60', ratelimit: '"login";r=0;t=60', 'retry-after': '30' });
  assert.is((await logins.consume('user:bob')).allowed, true);
  await logins.consume(5 as never).then(
    () => assert.unreachable('a key that is not a string is refused'),
    (error: Error) => assert.match(error.message, /key must be a string/),
  );
  assert.throws(() => createLimiter({ points: 2 } as never), /createLimiter: duration/);
});

test('SlotTable: the concurrencyLimit decision without a relay; a slot is released once', () => {
  const uploads = new SlotTable(2);
  const a = uploads.acquire('ann')!;
  const b = uploads.acquire('ann')!;
  assert.is(uploads.acquire('ann'), null);
  assert.ok(uploads.acquire('bob'), 'another key');
  a.release();
  a.release();
  const c = uploads.acquire('ann');
  assert.ok(c);
  assert.is(uploads.acquire('ann'), null, 'a second release of one slot freed nothing');
  b.release();
  c!.release();
});

test('policyItem: the window is the time an empty bucket takes to fill', () => {
  assert.is(policyItem({ name: 'a', points: 10, duration: 1000, burst: 20 }), '"a";q=20;w=2');
  assert.is(policyItem({ name: 'a', points: 100, duration: 100, burst: 100 }), '"a";q=100;w=1', 'at least 1 s');
});

test('a stage alone: a fake next, the decision and the 429', async () => {
  let calls = 0;
  const handler = rateLimit({ points: 1, duration: 60_000 }).wrap(async () => {
    calls++;
    return { status: 200, statusMessage: '', headers: {}, body: null };
  }, stageContext());
  const ok = await handler(fakeRequest());
  assert.is(ok.headers.ratelimit, '"default";r=0;t=60');
  const client = clientInfo('127.0.0.1');
  assert.is((await handler(fakeRequest('127.0.0.1', {}, 1, client))).status, 429);
  assert.is((await handler(fakeRequest('127.0.0.1', {}, 2, client))).status, 429, 'its retry is refused too');
  assert.is((await handler(fakeRequest('127.0.0.1', {}, 2))).status, 200, 'a later attempt of an allowed request is not counted');
  assert.is(calls, 2);
});

test('one stage value is one limit, however many pipelines wrap it (HTTP and WebSocket, two relays)', async () => {
  const stage = rateLimit({ points: 2, duration: 60_000 });
  const ok = async () => ({ status: 200, statusMessage: '', headers: {}, body: null });
  const http = stage.wrap(ok, stageContext());
  const handshakes = stage.wrap(ok, stageContext());
  assert.is((await http(fakeRequest())).status, 200);
  assert.is((await handshakes(fakeRequest())).status, 200);
  assert.is((await http(fakeRequest())).status, 429);
  assert.is((await rateLimit({ points: 2, duration: 60_000 }).wrap(ok, stageContext())(fakeRequest())).status, 200, 'another value, another limit');
});

test('a key function that throws fails the request like any stage error', async () => {
  const handler = rateLimit({ points: 1, duration: 1000, key: () => { throw new Error('boom'); } }).wrap(async () => ({ status: 200, statusMessage: '', headers: {}, body: null }), stageContext());
  await handler(fakeRequest()).then(
    () => assert.unreachable('should reject'),
    (error: Error) => assert.is(error.message, 'boom'),
  );
});

test.run();
