import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { retry } from '@relay/retry';
import { closedPort, fetchRaw, memoryLogger, optionErrorMessage, serveRelay, startUpstream } from '@relay/testkit';
import { concurrencyLimit, rateLimit } from '../src/index.js';

test("key 'path': an escaped spelling of a path counts in that path's bucket (/%6Cogin is /login to the upstream)", async () => {
  // The upstream decodes unreserved escapes (RFC 3986 §6.2.2.2): a key taken from the raw path
  // would give every spelling of /login its own quota.
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ points: 1, duration: 60_000, key: 'path' })] }));
  try {
    const statuses: number[] = [];
    for (const path of ['/login', '/%6Cogin', '/%6cogin?x=1', '/l%6Fgin', '/other']) statuses.push((await fetchRaw(`${served.url}${path}`)).status);
    assert.equal(statuses, [200, 429, 429, 429, 200]);
    assert.is(upstream.requests.length, 2);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('a limit of N per window: exactly N successes, then 429 with Retry-After and the IETF fields', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, logger, stages: [rateLimit({ name: 'api', points: 5, duration: 60_000 })] }),
  );
  try {
    const statuses: number[] = [];
    const responses = [];
    for (let i = 0; i < 8; i++) {
      const response = await fetchRaw(`${served.url}/x`);
      statuses.push(response.status);
      responses.push(response);
    }
    assert.equal(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert.is(upstream.requests.length, 5, 'refused requests never reach the upstream');
    assert.is(responses[0]!.headers['ratelimit-policy'], '"api";q=5;w=60');
    assert.is(responses[0]!.headers.ratelimit, '"api";r=4;t=12');
    assert.is(responses[4]!.headers.ratelimit, '"api";r=0;t=60');
    const refused = responses[5]!;
    assert.is(refused.headers['retry-after'], '12', 'the next token comes in one interval (60 s / 5)');
    assert.is(refused.headers.ratelimit, '"api";r=0;t=60');
    assert.is(refused.headers['ratelimit-policy'], '"api";q=5;w=60');
    assert.match(refused.text, /^429 Too Many Requests: /);
    assert.not.match(refused.text, /127\.0\.0\.1/);
    const logged = logger.lines.find((line) => line.message.startsWith('rate limit exceeded'));
    assert.ok(logged, 'a refusal is logged');
    assert.is(logged!.fields.limit, 'api');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('burst: a bucket of 10 refilled at 2 per minute takes 10 at once, then refuses', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ points: 2, duration: 60_000, burst: 10 })] }));
  try {
    const statuses = await Promise.all(Array.from({ length: 14 }, () => fetchRaw(served.url).then((response) => response.status)));
    assert.is(statuses.filter((status) => status === 200).length, 10);
    assert.is(statuses.filter((status) => status === 429).length, 4);
    const refused = await fetchRaw(served.url);
    assert.is(refused.headers['retry-after'], '30', 'after the burst, one token per 30 s');
    assert.is(refused.headers['ratelimit-policy'], '"default";q=10;w=300', 'the quota is the burst, the window the time to refill it');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('tokens come back at the sustained rate', async () => {
  const upstream = await startUpstream();
  // One token every 2 s, two at once: the third request is refused unless the first two took 2 s.
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ points: 1, duration: 2000, burst: 2 })] }));
  try {
    assert.is((await fetchRaw(served.url)).status, 200);
    assert.is((await fetchRaw(served.url)).status, 200);
    assert.is((await fetchRaw(served.url)).status, 429);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.is((await fetchRaw(served.url)).status, 200, 'the bucket refilled after a quiet spell');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('keyed by a header: each API key has its own bucket; a request without one is keyed by its address', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ points: 2, duration: 60_000, key: { header: 'x-api-key' } })] }),
  );
  try {
    const as = (key?: string) => fetchRaw(served.url, { headers: key === undefined ? {} : { 'x-api-key': key } }).then((r) => r.status);
    assert.equal([await as('a'), await as('a'), await as('a')], [200, 200, 429]);
    assert.equal([await as('b'), await as('b'), await as('b')], [200, 200, 429]);
    assert.equal([await as(), await as(), await as()], [200, 200, 429], 'no key: the client address has its own bucket');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('keyed by a cookie and by a function; a function returning null exempts the request', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        rateLimit({ name: 'tenant', points: 1, duration: 60_000, key: (request) => (request.path.startsWith('/health') ? null : String(request.headers['x-tenant'])) }),
        rateLimit({ name: 'session', points: 2, duration: 60_000, key: { cookie: 'sid' } }),
      ],
    }),
  );
  try {
    const get = (path: string, headers: Record<string, string>) => fetchRaw(`${served.url}${path}`, { headers }).then((r) => r.status);
    assert.is(await get('/a', { 'x-tenant': 't1', cookie: 'a=1; sid=s1' }), 200);
    assert.is(await get('/a', { 'x-tenant': 't1', cookie: 'sid=s2' }), 429, 'the tenant limit refuses');
    assert.is(await get('/a', { 'x-tenant': 't2', cookie: 'sid=s1' }), 200);
    assert.is(await get('/a', { 'x-tenant': 't3', cookie: 'sid=s1' }), 429, 'the session s1 has used its 2');
    for (let i = 0; i < 3; i++) assert.is(await get('/health', { cookie: `sid=h${i}` }), 200, 'exempt from the tenant limit');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('two limits on one route, per client and global, both reported in the IETF lists', async () => {
  const upstream = await startUpstream();
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [
        rateLimit({ name: 'global', key: 'route', points: 3, duration: 60_000 }),
        rateLimit({ name: 'per-key', key: { header: 'x-api-key' }, points: 2, duration: 60_000 }),
      ],
    }),
  );
  try {
    const first = await fetchRaw(served.url, { headers: { 'x-api-key': 'a' } });
    assert.is(first.headers['ratelimit-policy'], '"per-key";q=2;w=60, "global";q=3;w=60');
    assert.is(first.headers.ratelimit, '"per-key";r=1;t=30, "global";r=2;t=20');
    assert.is((await fetchRaw(served.url, { headers: { 'x-api-key': 'a' } })).status, 200);
    const refused = await fetchRaw(served.url, { headers: { 'x-api-key': 'a' } });
    assert.is(refused.status, 429, 'per key: 2');
    assert.is(refused.headers.ratelimit, '"per-key";r=0;t=60, "global";r=1;t=40', 'the refused request spent no global token (nginx semantics)');
    assert.is((await fetchRaw(served.url, { headers: { 'x-api-key': 'b' } })).status, 200, 'global: 2 of 3 spent, b gets the third');
    assert.is((await fetchRaw(served.url, { headers: { 'x-api-key': 'c' } })).status, 429, 'global: 3 spent');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('dry run: counts and logs what it would refuse, refuses nothing, adds no headers', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [rateLimit({ points: 1, duration: 60_000, dryRun: true })] }));
  try {
    const responses = [await fetchRaw(served.url), await fetchRaw(served.url), await fetchRaw(served.url)];
    assert.equal(responses.map((r) => r.status), [200, 200, 200]);
    assert.is(responses[0]!.headers.ratelimit, undefined);
    const lines = logger.lines.filter((line) => line.message.includes('dry run'));
    assert.is(lines.length, 1, 'the second refusal within a second is folded into the next line');
    assert.is(lines[0]!.level, 'warn');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('outside retry: a retried attempt is not a new request for the limit', async () => {
  let calls = 0;
  const upstream = await startUpstream((_req, res) => {
    calls++;
    res.writeHead(calls % 2 === 1 ? 503 : 200, { 'content-length': 0 }).end();
  });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [rateLimit({ points: 2, duration: 60_000 }), retry({ maxRetries: 2, backoffFactor: 1 })] }),
  );
  try {
    assert.is((await fetchRaw(served.url)).status, 200);
    assert.is((await fetchRaw(served.url)).status, 200);
    assert.is(upstream.requests.length, 4, 'each client request took two attempts');
    assert.is((await fetchRaw(served.url)).status, 429, 'two client requests, two tokens');
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('inside retry: only a client request’s first attempt counts, and a refused one stays refused', async () => {
  let calls = 0;
  const upstream = await startUpstream((_req, res) => {
    calls++;
    res.writeHead(calls % 2 === 1 ? 503 : 200, { 'content-length': 0 }).end();
  });
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      stages: [retry({ maxRetries: 2, backoffFactor: 1, statuses: [503, 429] }), rateLimit({ points: 2, duration: 1_000_000 })],
    }),
  );
  try {
    assert.is((await fetchRaw(served.url)).status, 200);
    assert.is((await fetchRaw(served.url)).status, 200);
    assert.is(upstream.requests.length, 4);
    const refused = await fetchRaw(served.url);
    assert.is(refused.status, 429, 'the retry of a refused attempt is refused again, not let through');
    assert.is(upstream.requests.length, 4);
  } finally {
    await served.close();
    await upstream.close();
  }
});

test('bad options throw when the stage is built, naming the option', () => {
  assert.throws(() => rateLimit({ points: 0, duration: 1000 }), /rateLimit: points must be a finite number > 0/);
  assert.throws(() => rateLimit({ points: 1.5, duration: 1000 }), /points must be a whole number/);
  assert.throws(() => rateLimit({ points: 5 } as never), /rateLimit: duration must be a number/);
  assert.throws(() => rateLimit({ points: 5, duration: 1000, burst: -1 }), /rateLimit: burst/);
  assert.throws(() => rateLimit({ points: 5, duration: 1000, point: 3 } as never), /unknown option "point" \(did you mean "points"\?/);
  assert.throws(() => rateLimit({ points: 5, duration: 1000, key: 'ip' as never }), /rateLimit: key must be/);
  assert.throws(() => rateLimit({ points: 5, duration: 1000, name: 'has "quotes"' }), /rateLimit: name/);
  assert.throws(() => rateLimit({ points: 5, duration: 1000, store: {} as never }), /rateLimit: store must be a LimitStore/);
  assert.throws(() => rateLimit({ points: 5, duration: 1000, dryRun: 'yes' as never }), /rateLimit: dryRun must be true or false/);
});

test('NaN points, duration, burst and max are refused with a RangeError naming NaN, as Infinity is', () => {
  // typeof NaN is 'number': "points must be a number, got number" said nothing about what was wrong.
  const cases: Array<[() => unknown, string]> = [
    [() => rateLimit({ points: Number.NaN, duration: 1000 }), 'rateLimit: points'],
    [() => rateLimit({ points: 10, duration: Number.NaN }), 'rateLimit: duration'],
    [() => rateLimit({ points: 10, duration: 1000, burst: Number.NaN }), 'rateLimit: burst'],
    [() => concurrencyLimit({ max: Number.NaN }), 'concurrencyLimit: max'],
    [() => rateLimit({ points: 10, duration: Number.POSITIVE_INFINITY }), 'rateLimit: duration'],
  ];
  for (const [run, option] of cases) {
    assert.throws(run, (error: Error) => error instanceof RangeError);
    const message = optionErrorMessage(run);
    assert.match(message, new RegExp(`^${option} must be a finite number > 0, got (NaN|Infinity)$`), message);
  }
});

test('RateLimit and RateLimit-Policy are on every response: the relay\'s 502 for an allowed request that spent a token carries them too', async () => {
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${await closedPort()}`, stages: [rateLimit({ points: 5, duration: 60_000, name: 'api' })] }));
  try {
    const failed = await fetchRaw(`${served.url}/x`);
    assert.is(failed.status, 502);
    assert.match(failed.text, /ERR_UPSTREAM_UNREACHABLE/);
    assert.is(failed.headers['ratelimit-policy'], '"api";q=5;w=60');
    assert.is(failed.headers.ratelimit, '"api";r=4;t=12', 'the token it spent shows');
  } finally {
    await served.close();
  }
});

test.run();
