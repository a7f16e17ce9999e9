// Review s36 (peers): http-proxy's and http-proxy-3's web-outgoing "#writeHeaders" cookie cases
// (cookieDomainRewrite / cookiePathRewrite, string and map forms), ported to setCookieRewriter and to
// cookies() on a relay. Relay promises the same edits (packages/cookies/README.md); all pass today.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { cookies, setCookieRewriter } from '../src/index.js';

const pair = ['hello; domain=my.domain; path=/', 'there; domain=my.domain; path=/'];

// http-proxy "rewrites domain", "removes domain", "rewrites path", "removes path" (a nameless cookie like `hello` included).
test('domain and path are set or removed on every cookie, nameless ones included, other bytes kept', () => {
  assert.equal(setCookieRewriter({ rewriteDomain: () => 'my.new.domain' })(pair), ['hello; domain=my.new.domain; path=/', 'there; domain=my.new.domain; path=/']);
  assert.equal(setCookieRewriter({ rewriteDomain: () => '' })(pair[0]!), 'hello; path=/');
  assert.equal(setCookieRewriter({ rewritePath: () => '/dummyPath' })(pair[0]!), 'hello; domain=my.domain; path=/dummyPath');
  assert.equal(setCookieRewriter({ rewritePath: () => '' })(pair[0]!), 'hello; domain=my.domain');
  assert.equal(setCookieRewriter({})(pair), pair);
});

// http-proxy "rewrites headers with advanced configuration": { '*': '', 'my.old.domain': 'my.new.domain', 'my.special.domain': 'my.special.domain' }.
test('a domain map: the named domain is rewritten, one mapped to itself kept, "*" removes every other Domain', () => {
  const rewrite = setCookieRewriter({ rewriteDomain: { '*': '', 'my.old.domain': 'my.new.domain', 'my.special.domain': 'my.special.domain' } });
  assert.equal(rewrite(['hello-on-my.domain; domain=my.domain; path=/', 'hello-on-my.old.domain; domain=my.old.domain; path=/', 'hello-on-my.special.domain; domain=my.special.domain; path=/', 'host-only=1; path=/']), [
    'hello-on-my.domain; path=/',
    'hello-on-my.old.domain; domain=my.new.domain; path=/',
    'hello-on-my.special.domain; domain=my.special.domain; path=/',
    'host-only=1; path=/',
  ]);
});

// http-proxy-3 set-cookie.test.ts through a relay: every Set-Cookie stays its own line, in order, rewritten.
test('through a relay, three Set-Cookie lines stay three lines in order, each rewritten', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.setHeader('set-cookie', ['a=1; Domain=auth.internal; Path=/', 'b=2; Path=/', 'c=3; Domain=.auth.internal; Path=/']);
    res.end('ok');
  });
  const gw = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [cookies({ rewriteDomain: { 'auth.internal': 'example.com' } })] }));
  try {
    const response = await fetchRaw(`${gw.url}/`);
    assert.equal(response.headers['set-cookie'], ['a=1; Domain=example.com; Path=/', 'b=2; Path=/', 'c=3; Domain=example.com; Path=/']);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

test.run();
