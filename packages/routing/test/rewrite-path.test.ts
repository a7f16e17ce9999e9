// rewritePath() in a real relay in front of a real upstream, with a real client: rules, the
// query kept byte for byte, and the traversal forms a rewrite can produce refused by the relay.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, sendRaw, serveRelay, startUpstream, type MemoryLogger, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay } from '@relay/core';
import { rewritePath, type RewriteFunction, type RewriteRules } from '../src/index.js';

let upstream: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

async function front(rules: RewriteRules | RewriteFunction, logger?: MemoryLogger): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: `${upstream.url}/base`, stages: [rewritePath(rules)], logger }));
  fronts.push(served);
  return served;
}

async function upstreamPath(served: RelayServer<Relay>, path: string): Promise<string> {
  const response = await fetchRaw(served.url + path);
  assert.is(response.status, 200, response.text);
  return (JSON.parse(response.text) as { url: string }).url;
}

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await Promise.all(fronts.map((served) => served.close()));
  await upstream.close();
});

test('a prefix rule rewrites at a segment boundary, under the target base, the query byte for byte', async () => {
  const served = await front({ '/api/v1': '/v1', '/old/': '/' });
  assert.is(await upstreamPath(served, '/api/v1/users?a=%2F..&b=%zz&c'), '/base/v1/users?a=%2F..&b=%zz&c');
  assert.is(await upstreamPath(served, '/api/v1'), '/base/v1');
  assert.is(await upstreamPath(served, '/api/v1x/users'), '/base/api/v1x/users');
  assert.is(await upstreamPath(served, '/old/thing?x=1'), '/base/thing?x=1');
  assert.is(await upstreamPath(served, '/other'), '/base/other');
});

test('RegExp rules (a Map or pairs) use their groups; the first matching rule wins', async () => {
  const served = await front(
    new Map<string | RegExp, string>([
      [/^\/u\/(\d+)$/g, '/users/$1'],
      [/^\/u\/(.*)$/, '/by-name/$1'],
    ]),
  );
  assert.is(await upstreamPath(served, '/u/42?full=1'), '/base/users/42?full=1');
  assert.is(await upstreamPath(served, '/u/42'), '/base/users/42', 'a global flag must not make the rule stateful');
  assert.is(await upstreamPath(served, '/u/ada'), '/base/by-name/ada');
});

test('a function, sync or async, sees the path without base or query', async () => {
  const seen: string[] = [];
  const served = await front(async (path) => {
    seen.push(path);
    await new Promise((resolve) => setTimeout(resolve, 1));
    return path.toLowerCase();
  });
  assert.is(await upstreamPath(served, '/Users/ADA?Q=Keep'), '/base/users/ada?Q=Keep');
  assert.equal(seen, ['/Users/ADA']);
  const sync = await front((path) => `/v2${path}`);
  assert.is(await upstreamPath(sync, '/x?y'), '/base/v2/x?y');
});

test('rules and functions see the normalised path; a path no rule changes is forwarded as sent', async () => {
  const served = await front({ '/api/v1': '/v1', '/caf%c3%a9': '/cafe' });
  assert.is(await upstreamPath(served, '/%61pi/v1/users?q=%61'), '/base/v1/users?q=%61', 'an escaped letter cannot dodge the rule');
  assert.is(await upstreamPath(served, '/api/v1/%7eada%2f'), '/base/v1/~ada%2F', 'the rewritten path is sent normalised');
  assert.is(await upstreamPath(served, '/caf%C3%A9/menu'), '/base/cafe/menu', 'a prefix written in lower-case hex');
  assert.is(await upstreamPath(served, '/other/%61b%2f?x=%61'), '/base/other/%61b%2f?x=%61', 'no rule: the bytes as sent');
  const seenPaths: string[] = [];
  const recorder = await front((path) => {
    seenPaths.push(path);
    return path;
  });
  assert.is(await upstreamPath(recorder, '/%55sers/caf%c3%a9?q=%c3'), '/base/%55sers/caf%c3%a9?q=%c3');
  assert.equal(seenPaths, ['/Users/caf%C3%A9']);
});

test('traversal forms produced by a rewrite are refused with 400 and logged; nothing reaches the upstream', async () => {
  const logger = memoryLogger();
  const served = await front((path) => path.replace('/go/', '/').replace(/~/g, '%'), logger);
  const before = upstream.requests.length;
  // Each client path is safe; each rewritten one is not.
  const unsafe = ['/go/..', '/go//evil.example/x', '/go/a/~2e~2e/b', '/go/a/..~2fb', '/go/a~2f..~2fb', '/go/a~5c..~5cb', '/go/~252e~252e/x', '/go/a/..;/b'];
  for (const path of unsafe) {
    const response = await fetchRaw(served.url + path.replace('/go/..', '/go/~2e~2e'));
    if (path === '/go/..') {
      // "/go/~2e~2e" from the client (safe) becomes "/%2e%2e" after the rewrite.
      assert.is(response.status, 400, path);
      continue;
    }
    assert.is(response.status, 400, `${path}: ${response.text}`);
    assert.not.match(response.text, '127.0.0.1');
  }
  // A raw ".." the rewrite itself puts in.
  const dots = await front(() => '/a/../../etc/passwd', logger);
  assert.is((await fetchRaw(`${dots.url}/x`)).status, 400);
  assert.is(upstream.requests.length, before);
  assert.ok(logger.lines.some((line) => line.level === 'warn' && /unsafe upstream path/.test(line.message)));
});

test('a rewrite to a bad value or one that throws answers 500 with a log line, and the relay keeps serving', async () => {
  const logger = memoryLogger();
  const noSlash = await front(() => 'relative', logger);
  const withQuery = await front(() => '/x?injected=1', logger);
  const throws = await front(async () => {
    throw new Error('lookup failed');
  }, logger);
  for (const served of [noSlash, withQuery, throws]) {
    const response = await fetchRaw(`${served.url}/a`);
    assert.is(response.status, 500);
  }
  assert.ok(logger.lines.some((line) => line.level === 'error' && line.fields.error === 'lookup failed'));
  assert.ok(logger.lines.some((line) => line.level === 'error' && /must be a path/.test(String(line.fields.error))));
  const raw = await sendRaw(throws.port, 'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(raw, /^HTTP\/1.1 500/);
});

test('rules are checked at startup', () => {
  assert.throws(() => rewritePath({}), /at least one rule/);
  assert.throws(() => rewritePath({ api: '/v1' }), /prefix starting with "\/"/);
  assert.throws(() => rewritePath({ '/api': 'v1' }), /must start with "\/"/);
  assert.throws(() => rewritePath([[/x/, 1 as unknown as string]]), /replacement must be a string/);
  assert.throws(() => rewritePath(null as unknown as RewriteRules), /needs an object/);
});

test.run();
