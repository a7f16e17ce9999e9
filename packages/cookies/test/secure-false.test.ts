// `secure: false` (plain-HTTP development) strips Secure, and with it what browsers accept only beside Secure:
// `SameSite=None` (every cross-site session or SSO cookie) and `Partitioned` (CHIPS). Left in, the cookie is rejected
// and the session lost. The stage already refuses `sameSite: 'None'` with `secure: false` for the same reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { cookies, setCookieRewriter } from '../src/index.js';

/** What Chrome and Firefox refuse to store: SameSite=None or Partitioned without Secure. */
function rejectedByBrowsers(line: string): boolean {
  const attributes = line.split(';').slice(1).map((text) => text.trim().toLowerCase());
  const secure = attributes.some((text) => text === 'secure' || text.startsWith('secure='));
  const sameSiteNone = attributes.some((text) => /^samesite\s*=\s*none$/.test(text));
  const partitioned = attributes.some((text) => text === 'partitioned' || text.startsWith('partitioned='));
  return !secure && (sameSiteNone || partitioned);
}

test('secure: false never turns an upstream SameSite=None or Partitioned cookie into one browsers reject', async () => {
  const upstreamCookies = ['sso=abc; Path=/; Secure; HttpOnly; SameSite=None', 'embed=1; Path=/; Secure; Partitioned; SameSite=None', 'plain=1; Path=/; Secure'];
  const upstream = await startUpstream((_req, res) => {
    res.setHeader('set-cookie', upstreamCookies);
    res.end('ok');
  });
  const gw = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [cookies({ secure: false })] }));
  try {
    const response = await fetchRaw(`${gw.url}/login`);
    assert.is(response.status, 200);
    const lines = response.headers['set-cookie'] as string[];
    assert.is(lines.length, 3);
    for (const line of lines) {
      assert.not.match(line, /;\s*Secure(;|$)/i, `Secure was not stripped: ${line}`);
      assert.not.ok(rejectedByBrowsers(line), `the relay sent a cookie browsers reject: ${line}`);
    }
    assert.is(lines[2], 'plain=1; Path=/', 'a cookie without SameSite=None only loses Secure');
    // The plain function applies the same rule.
    for (const line of setCookieRewriter({ secure: false })(upstreamCookies)) assert.not.ok(rejectedByBrowsers(line), `setCookieRewriter gave ${line}`);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

test('secure: false removes only SameSite=None (any case) and Partitioned: Lax and Strict stay, other attributes are kept byte for byte', () => {
  const rewrite = setCookieRewriter({ secure: false });
  assert.is(rewrite('a=1; Path=/; Secure; SameSite=Lax'), 'a=1; Path=/; SameSite=Lax');
  assert.is(rewrite('a=1; secure; samesite=NONE; HttpOnly'), 'a=1; HttpOnly');
  assert.is(rewrite('a=1; Secure; Partitioned; SameSite=Strict'), 'a=1; SameSite=Strict');
  assert.is(rewrite('a=1; Path=/'), 'a=1; Path=/', 'a cookie without Secure is unchanged');
  // With a sameSite rule the rule decides the attribute, as before.
  assert.is(setCookieRewriter({ secure: false, sameSite: 'Lax' })('a=1; Secure; SameSite=None'), 'a=1; SameSite=Lax');
});

test.run();
