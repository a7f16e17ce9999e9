// Review s40: conditions and rewrite rules that silently never match what a client sends.
//
// 1. A path glob or rewritePath prefix written with a character a request target cannot carry raw
//    (a space, a non-ASCII letter) is kept raw when compiled, while every client sends it
//    percent-encoded (`/my%20docs`, `/caf%C3%A9`) and the relay matches that normalised, encoded
//    form: the rule can never match. nginx matches `location /café/` on the decoded URI, so the same
//    rule there covers `/caf%C3%A9/`. Either encode the pattern when compiling it or refuse it.
// 2. when({ header: { host } }) compares the Host the relay already set for the upstream, never the
//    client's: a rule on the client's Host (Envoy's header matcher on `host`/`:authority`,
//    http-proxy-middleware's `req.headers.host`) never runs, and one on the upstream's address runs for
//    every request. Either match the client's Host or refuse `host` in `header` and point at `host`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Stage } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, type FetchOptions } from '@relay/testkit';
import { rewritePath, when, type Conditions } from '../src/index.js';

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

/** What the upstream saw for one request through a relay with `build()`'s stage, or 'TypeError' when building it throws one. */
async function through(build: () => Stage, path: string, options: FetchOptions = {}): Promise<{ url: string; matched: boolean } | 'TypeError'> {
  let stage: Stage;
  try {
    stage = build();
  } catch (error) {
    if (error instanceof TypeError) return 'TypeError';
    throw error;
  }
  const upstream = await startUpstream();
  const served = await serveRelay(createRelay({ targetBaseUrl: `${upstream.url}/base`, stages: [stage], logger: memoryLogger() }));
  try {
    const response = await fetchRaw(served.url + path, options);
    assert.is(response.status, 200, response.text);
    const seen = upstream.requests[0]!;
    return { url: seen.url, matched: seen.headers['x-matched'] === '1' };
  } finally {
    await served.close();
    await upstream.close();
  }
}

async function whenMatches(conditions: Conditions, path: string, options: FetchOptions = {}): Promise<boolean | 'TypeError'> {
  const result = await through(() => when(conditions, marker()), path, options);
  return result === 'TypeError' ? result : result.matched;
}

test('when({ path }): a glob written with a non-ASCII letter or a space matches the request the client sends, or is refused when built', async () => {
  // What every HTTP client puts on the wire for /café/menu and /my docs/a.txt.
  const accented = await whenMatches({ path: '/café/**' }, '/caf%C3%A9/menu');
  assert.ok(accented === true || accented === 'TypeError', `"/café/**" neither matched /caf%C3%A9/menu nor was refused (${String(accented)})`);
  const spaced = await whenMatches({ path: '/my docs/*' }, '/my%20docs/a.txt');
  assert.ok(spaced === true || spaced === 'TypeError', `"/my docs/*" neither matched /my%20docs/a.txt nor was refused (${String(spaced)})`);
  // Regression: the encoded spelling the README shows works.
  assert.is(await whenMatches({ path: '/caf%c3%a9/**' }, '/caf%C3%A9/menu'), true);
});

test('rewritePath: a prefix written with a non-ASCII letter rewrites the request the client sends, or is refused when built', async () => {
  const result = await through(() => rewritePath({ '/café': '/cafe' }), '/caf%C3%A9/menu?x=%C3%A9');
  assert.ok(
    result === 'TypeError' || result.url === '/base/cafe/menu?x=%C3%A9',
    `rewritePath({ "/café": "/cafe" }) neither rewrote /caf%C3%A9/menu nor was refused (upstream saw ${result === 'TypeError' ? '' : result.url})`,
  );
  // Regression: the encoded spelling works.
  const encoded = await through(() => rewritePath({ '/caf%C3%A9': '/cafe' }), '/caf%c3%a9/menu?x=%C3%A9');
  assert.equal(encoded, { url: '/base/cafe/menu?x=%C3%A9', matched: false });
});

test('when({ header: { host } }) decides on the client’s Host, or is refused when built (it must not compare the upstream’s Host)', async () => {
  const client = await whenMatches({ header: { host: 'api.example.com' } }, '/x', { headers: { host: 'api.example.com' } });
  assert.ok(client === true || client === 'TypeError', `header { host: "api.example.com" } neither matched Host: api.example.com nor was refused (${String(client)})`);
  const other = await whenMatches({ header: { host: /^api\./ } }, '/x', { headers: { host: 'www.example.com' } });
  assert.ok(other === false || other === 'TypeError', `header { host: /^api\\./ } ran for Host: www.example.com (${String(other)})`);
  // What it compares today: the upstream's own address, which every request carries.
  const upstreamHost = await whenMatches({ header: { host: /^127\.0\.0\.1:\d+$/ } }, '/x', { headers: { host: 'public.example.com' } });
  assert.ok(upstreamHost === false || upstreamHost === 'TypeError', 'header { host } matched the upstream’s address, not the client’s Host: public.example.com');
});

test.run();
