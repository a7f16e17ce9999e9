// Review s36 (black box) of @relay/cookies, issue 4: Set-Cookie Domain/Path/Secure/SameSite rewriting through a real
// relay against a real upstream, with several cookies, odd attribute casing and spacing, Expires dates with commas,
// deletion cookies, and the cookies of a response retried past (retry() inside cookies()).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { createRelay } from '@relay/core';
// Not a dependency of @relay/cookies: the retry stage's source, for the documented order cookies() → retry().
import { retry } from '../../retry/src/index.js';
import { cookies } from '../src/index.js';

/** The raw Set-Cookie lines of a response, in order. */
function setCookies(rawHeaders: string[]): string[] {
  const lines: string[] = [];
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (rawHeaders[index]!.toLowerCase() === 'set-cookie') lines.push(rawHeaders[index + 1]!);
  }
  return lines;
}

const upstreamCookies = [
  'sid="s:abc,def"; domain = AUTH.internal ; path=/api/v1; SECURE; httponly; samesite = none',
  'prefs=dark;Path=/api/v1;Expires=Wed, 21 Oct 2037 07:28:00 GMT;Domain=.auth.internal;Priority=High;X-Unknown=1',
  'logout=; Max-Age=0; Domain=auth.internal; Path=/api/v1; Expires=Thu, 01-Jan-1970 00:00:00 GMT',
  'host_only=1; Path=/',
];

// Issue 4: "Every Set-Cookie stays its own header, in order; attributes the user did not ask to change keep their
// values; quoted values, `Domain = x` spacing, Expires dates with commas and unknown attributes survive."
test('four cookies with odd casing and spacing: each rule edits only its attribute, in place, every other byte kept', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'set-cookie': upstreamCookies, 'content-length': 2 }).end('ok');
  });
  const served = await serveRelay(
    createRelay({
      targetBaseUrl: upstream.url,
      upstreamPrefix: '/api/v1',
      mountPath: '/auth',
      stages: [cookies({ rewriteDomain: { 'auth.internal': 'example.com' }, rewritePath: { '/api/v1': '/auth' }, secure: false, sameSite: 'Lax' })],
    }),
  );
  const response = await fetchRaw(`${served.url}/auth/login`);
  assert.is(response.status, 200);
  assert.equal(setCookies(response.rawHeaders), [
    'sid="s:abc,def"; domain = example.com ; path=/auth; httponly; samesite = Lax',
    'prefs=dark;Path=/auth;Expires=Wed, 21 Oct 2037 07:28:00 GMT;Domain=example.com;Priority=High;X-Unknown=1; SameSite=Lax',
    'logout=; Max-Age=0; Domain=example.com; Path=/auth; Expires=Thu, 01-Jan-1970 00:00:00 GMT; SameSite=Lax',
    'host_only=1; Path=/; SameSite=Lax',
  ]);
  await served.close();
  await upstream.close();
});

// README: rewriteDomain "''" removes the attribute; a deletion cookie must still reach the browser with the rest intact.
test('dropping the Domain keeps a deletion cookie (empty value, Max-Age=0, comma date) deleting, on the host the browser used', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'set-cookie': upstreamCookies, 'content-length': 2 }).end('ok');
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [cookies({ rewriteDomain: () => '', secure: true })] }));
  const response = await fetchRaw(`${served.url}/x`);
  assert.equal(setCookies(response.rawHeaders), [
    'sid="s:abc,def"; path=/api/v1; SECURE; httponly; samesite = none',
    'prefs=dark;Path=/api/v1;Expires=Wed, 21 Oct 2037 07:28:00 GMT;Priority=High;X-Unknown=1; Secure',
    'logout=; Max-Age=0; Path=/api/v1; Expires=Thu, 01-Jan-1970 00:00:00 GMT; Secure',
    'host_only=1; Path=/; Secure',
  ]);
  await served.close();
  await upstream.close();
});

// cookies README: "Outside a retry stage (it rewrites the final response once)"; retry README: a response retried
// past is let go. A cookie from a discarded 503 must not reach the browser.
test('with cookies() outside retry(), only the final response sets cookies, rewritten once', async () => {
  let calls = 0;
  const upstream = await startUpstream((_req, res) => {
    calls++;
    if (calls === 1) {
      res.writeHead(503, { 'set-cookie': ['attempt=1; Domain=auth.internal'], 'content-length': 0 }).end();
      return;
    }
    res.writeHead(200, { 'set-cookie': ['attempt=2; Domain=auth.internal; Path=/'], 'content-length': 2 }).end('ok');
  });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [cookies({ rewriteDomain: { 'auth.internal': 'example.com' } }), retry({ maxRetries: 1, backoffFactor: 5 })] }),
  );
  const response = await fetchRaw(`${served.url}/x`);
  assert.is(response.status, 200);
  assert.is(calls, 2);
  assert.equal(setCookies(response.rawHeaders), ['attempt=2; Domain=example.com; Path=/']);
  await served.close();
  await upstream.close();
});

test.run();
