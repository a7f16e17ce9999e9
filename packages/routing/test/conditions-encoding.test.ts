// Paths and hosts as the client sends them, in a real relay in front of a real upstream:
// globs and rewritePath prefixes written decoded (`/café/**`, `/my docs/*`) match the encoded path
// every client sends (`/caf%C3%A9/…`), a raw `|` and `%7C` are one path, a rewrite's raw non-ASCII
// result goes upstream encoded, and when({ header: { host } }) decides on the client's Host, not
// the upstream's that core sets before the stages run (review s40).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay, type Stage } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, type FetchOptions, type RelayServer, type Upstream } from '@relay/testkit';
import { rewritePath, when, type Conditions, type RewriteFunction, type RewriteRules } from '../src/index.js';

let upstream: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

/** A stage that marks the request it runs for, so the upstream shows whether it ran. */
function marker(): Stage {
  return {
    name: 'marker',
    wrap: (next) =>
      function markerStage(request) {
        request.headers['x-matched'] = '1';
        return next(request);
      },
  };
}

async function front(stage: Stage): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: `${upstream.url}/base`, stages: [stage], logger: memoryLogger() }));
  fronts.push(served);
  return served;
}

interface Seen {
  url: string;
  headers: Record<string, string>;
}

async function seen(served: RelayServer<Relay>, path: string, options: FetchOptions = {}): Promise<Seen> {
  const response = await fetchRaw(served.url + path, options);
  assert.is(response.status, 200, response.text);
  return JSON.parse(response.text) as Seen;
}

/** Whether `when(conditions)`'s stage ran for each request, in order. */
async function matches(conditions: Conditions, requests: Array<[string, FetchOptions?]>): Promise<boolean[]> {
  const served = await front(when(conditions, marker()));
  const results: boolean[] = [];
  for (const [path, options] of requests) results.push((await seen(served, path, options)).headers['x-matched'] === '1');
  return results;
}

/** The upstream path of each request through `rewritePath(rules)`. */
async function rewritten(rules: RewriteRules | RewriteFunction, paths: string[]): Promise<string[]> {
  const served = await front(rewritePath(rules));
  const urls: string[] = [];
  for (const path of paths) urls.push((await seen(served, path)).url);
  return urls;
}

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await Promise.all(fronts.map((served) => served.close()));
  await upstream.close();
});

test('when({ path }): a glob written with a non-ASCII letter or a space matches the encoded path clients send', async () => {
  assert.equal(await matches({ path: '/café/**' }, [['/caf%C3%A9/menu'], ['/caf%c3%a9'], ['/cafe/menu'], ['/caf%C3%A8/menu']]), [true, true, false, false]);
  assert.equal(await matches({ path: '/my docs/*' }, [['/my%20docs/a.txt'], ['/my%20docs/a/b'], ['/my+docs/a.txt']]), [true, false, false]);
  // `?` and `*` stay glob characters; other characters outside a path's own are literal, encoded.
  assert.equal(await matches({ path: ['/my docs/?.txt', '/x#y/*'] }, [['/my%20docs/a.txt'], ['/my%20docs/ab.txt'], ['/x%23y/1']]), [true, false, true]);
  // The encoded spelling the README shows still works, in either case of hex.
  assert.equal(await matches({ path: '/caf%c3%a9/**' }, [['/caf%C3%A9/menu']]), [true]);
});

test('when({ path }): a character some clients send raw and others encoded (`|`) matches in both spellings, written either way', async () => {
  const requests: Array<[string]> = [['/a|b/x'], ['/a%7Cb/x'], ['/a%7cb/x'], ['/ab/x']];
  assert.equal(await matches({ path: '/a|b/*' }, requests), [true, true, true, false]);
  assert.equal(await matches({ path: '/a%7cb/*' }, requests), [true, true, true, false]);
});

test('rewritePath: a prefix written with a non-ASCII letter or a space rewrites the encoded path; the query is untouched', async () => {
  assert.equal(await rewritten({ '/café': '/cafe', '/my docs/': '/docs/' }, ['/caf%C3%A9/menu?x=%C3%A9', '/my%20docs/a.txt', '/cafe/menu']), [
    '/base/cafe/menu?x=%C3%A9',
    '/base/docs/a.txt',
    '/base/cafe/menu',
  ]);
  // Regression: the encoded spelling works; a literal `?` in a prefix is the encoded `%3F` a path can carry.
  assert.equal(await rewritten([['/caf%C3%A9', '/cafe'], ['/what?', '/faq']], ['/caf%c3%a9/menu', '/what%3F/x', '/what']), ['/base/cafe/menu', '/base/faq/x', '/base/what']);
});

test('rewritePath: a replacement or result with a raw non-ASCII letter or a space goes upstream percent-encoded (UTF-8); a raw backslash is still refused', async () => {
  assert.equal(await rewritten({ '/cafe': '/café x' }, ['/cafe/menu?q=1']), ['/base/caf%C3%A9%20x/menu?q=1']);
  assert.equal(await rewritten([[/^\/u\/(\d+)$/, '/über/$1']], ['/u/7']), ['/base/%C3%BCber/7']);
  assert.equal(await rewritten((path) => (path === '/e' ? '/a|b/😀' : path), ['/e', '/a|b']), ['/base/a|b/%F0%9F%98%80', '/base/a|b']);
  const served = await front(rewritePath(() => '/a\\é'));
  assert.is((await fetchRaw(`${served.url}/x`)).status, 400);
});

test('rewritePath: RegExp rules and functions see a raw `|` as `%7C`; a path no rule changes is forwarded as sent', async () => {
  assert.equal(await rewritten([[/^\/a%7Cb$/, '/pipe']], ['/a|b', '/a%7cb', '/a|c']), ['/base/pipe', '/base/pipe', '/base/a|c']);
});

test('when({ header: { host } }) decides on the client’s Host (or :authority, any case of the name), never the upstream’s', async () => {
  assert.equal(
    await matches({ header: { host: 'api.example.com' } }, [['/x', { headers: { host: 'api.example.com' } }], ['/x', { headers: { host: 'www.example.com' } }]]),
    [true, false],
  );
  assert.equal(await matches({ header: { Host: /^api\./ } }, [['/x', { headers: { host: 'api.example.com:8080' } }], ['/x', { headers: { host: 'www.example.com' } }]]), [true, false]);
  assert.equal(await matches({ header: { ':authority': 'api.example.com' } }, [['/x', { headers: { host: 'api.example.com' } }], ['/x', { headers: { host: 'other.test' } }]]), [true, false]);
  // What it compared before: the upstream's own address, which every request carries.
  assert.equal(await matches({ header: { host: /^127\.0\.0\.1:\d+$/ } }, [['/x', { headers: { host: 'public.example.com' } }]]), [false]);
  assert.equal(await matches({ header: { host: true, 'x-key': 'k' } }, [['/x', { headers: { host: 'a.test', 'x-key': 'k' } }], ['/x', { headers: { host: 'a.test' } }]]), [true, false]);
  assert.throws(() => when({ header: { ':path': '/x' } }, marker()), /header name ":path" is not a field name/);
});

test.run();
