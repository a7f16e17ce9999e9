// Review s36b (routing, today's commit "one percent-encoding normal form for every routing decision"),
// black box with a real relay, a real upstream and raw requests: whether a path guard
// (`when({ path }, deny)`) can be stepped around now that conditions, globs and rewritePath decide on
// decodeUnreserved's normal form and a rewritten path is forwarded in that form. Tried: double and
// broken escapes (%2561, %6%31), %2F / %5C / raw "\" inside a segment, mixed-case hex, encoded dot
// segments, overlong UTF-8, %00, empty segments, globs written with escapes, and what the upstream
// receives (as sent without a rewrite, normal form after one). References: RFC 3986 §2.1, §2.4, §6.2.2;
// nginx ngx_http_parse_complex_uri (matches locations on the decoded URI, 400 for a "%" that starts
// no escape, "%2F" decoded into a separator); Envoy path_with_escaped_slashes_action (CVE-2021-29492).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay, type Stage } from '@relay/core';
import { decodeUnreserved } from '@relay/core/transport';
import { memoryLogger, sendRaw, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { rewritePath, when } from '../src/index.js';

let upstream: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  for (const served of fronts) await served.close();
  await upstream.close();
});

async function front(stages: Stage[]): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: `${upstream.url}/base`, stages, logger: memoryLogger() }));
  fronts.push(served);
  return served;
}

/** A stage that answers 403 itself: the guard a condition puts in front of some paths. */
const deny: Stage = {
  name: 'deny',
  wrap: () =>
    function denyStage() {
      return Promise.resolve({ status: 403, statusMessage: '', headers: { 'content-length': '0' }, body: null });
    },
};

/** Sends `target` byte for byte; the path the upstream received, or the relay's status line when none reached it. */
async function reached(served: RelayServer<Relay>, target: string): Promise<string> {
  const before = upstream.requests.length;
  const response = await sendRaw(served.port, `GET ${target} HTTP/1.1\r\nhost: relay.test\r\nconnection: close\r\n\r\n`);
  return upstream.requests.length === before ? response.split('\r\n')[0]! : `upstream ${upstream.requests.at(-1)!.url}`;
}

/** The path an upstream that decodes percent-encoding once (node's URL, nginx, Go, Django) serves for `url`. */
function decodedOnce(url: string): string {
  const path = url.split('?')[0]!;
  return decodeURIComponent(path.replace(/%(?![0-9A-Fa-f]{2})/g, '%25'));
}

test('the normal form is a fixed point: normalising it again changes nothing (a lone "%" must not turn following escapes into a new one)', () => {
  // RFC 3986 §6.2.2: normalisation gives one form per resource; §2.4: a "%" that starts no escape
  // is not valid. "/%6%31dmin" normalises to "/%61dmin", which normalises again to "/admin": the
  // "normal form" the guard saw is one decode away from what the upstream will serve once the
  // form is forwarded (rewritePath, the gateway). nginx answers 400 to such a target.
  for (const target of ['/%6%31dmin', '/%%36%31dmin', '/x/%2%46y', '/%%414']) {
    const once = decodeUnreserved(target);
    assert.is(decodeUnreserved(once), once, `${target} → ${once} → ${decodeUnreserved(once)}`);
  }
});

test('a guard in front of rewritePath cannot be stepped around with a broken escape that normalises into an escape (/api/%6%31dmin)', async () => {
  // The guard protects /api/admin/**; the rewrite maps /api → the upstream root, so the upstream's
  // /admin is what the guard protects. /api/%61dmin is refused (today's fix). /api/%6%31dmin is seen
  // by the guard as /api/%61dmin (no match), rewritten to /%61dmin and forwarded in that "normal
  // form", which the upstream decodes to /admin/users. Expected: 403 (the guard matches) or 400 (nginx:
  // a "%" without two hex digits is an invalid request), never the upstream.
  const served = await front([when({ path: '/api/admin/**' }, deny), rewritePath({ '/api': '' })]);
  assert.is(await reached(served, '/api/admin/users'), 'HTTP/1.1 403 Forbidden', 'baseline');
  assert.is(await reached(served, '/api/%61dmin/users'), 'HTTP/1.1 403 Forbidden', "today's fix");
  for (const target of ['/api/%6%31dmin/users', '/api/%%36%31dmin/users']) {
    const seen = await reached(served, target);
    const asServed = seen.startsWith('upstream ') ? decodedOnce(seen.slice('upstream '.length)) : seen;
    assert.ok(!seen.startsWith('upstream '), `${target} reached the upstream as ${seen.slice(9)}, which it serves as ${asServed}`);
  }
});

test('a path glob with a "?" wildcard before an escape is normalised like any other glob (/v?/caf%c3%a9/**)', async () => {
  // README: "Globs … are normalised the same way when they are compiled (a glob written /%7Euser/**
  // matches /~user)". decodeUnreserved reads the glob's "?" wildcard as the start of a query and
  // leaves the rest as written, so '/v?/%7Euser/**' and '/v?/caf%c3%a9/**' can never match a
  // normalised request path: the guard silently guards nothing.
  const served = await front([when({ path: ['/v?/%7Euser/**', '/v?/caf%c3%a9/**'] }, deny)]);
  assert.is(await reached(served, '/v1/~user/x'), 'HTTP/1.1 403 Forbidden', '/v?/%7Euser/** must take /v1/~user/x');
  assert.is(await reached(served, '/v1/%7euser/x'), 'HTTP/1.1 403 Forbidden');
  assert.is(await reached(served, '/v1/caf%C3%A9/menu'), 'HTTP/1.1 403 Forbidden', '/v?/caf%c3%a9/** must take /v1/caf%C3%A9/menu');
  assert.is(await reached(served, '/v1/caf%c3%a9/menu'), 'HTTP/1.1 403 Forbidden');
});

test('when({ path: "/admin/**" }, deny) is not stepped around with a back slash (/admin\\users): refused with 400', async () => {
  // Core refuses "/a%2F..%2Fb" and "/a\..\b" because an upstream may read %2F, %5C and "\" as "/"
  // (path.ts assertSafePath: "also split on \, %2f and %5c"); under that same reading
  // /admin%2Fusers is /admin/users. nginx decodes %2F before matching a location (its
  // ngx_http_parse_complex_uri feeds the decoded byte back through the slash state); Envoy made
  // this CVE-2021-29492 and added path_with_escaped_slashes_action (REJECT_REQUEST /
  // UNESCAPE_AND_*); Apache (AllowEncodedSlashes Off) and Tomcat refuse %2F; WHATWG URL parsing
  // (node's `new URL`) turns "\" into "/". Expected: 403 or a 400 refusal, never the upstream.
  // Chosen: a raw "\" is refused (400, as Tomcat and Spring's firewall do); %2F and %5C stay encoded
  // and are not separators for matching (Envoy's default, KEEP_UNCHANGED; GitLab's API puts %2F in
  // segments), as docs/path-mapping.md says.
  const served = await front([when({ path: '/admin/**' }, deny)]);
  assert.is(await reached(served, '/admin/users'), 'HTTP/1.1 403 Forbidden', 'baseline');
  for (const target of ['/admin\\users', '/%61dmin\\x']) {
    const seen = await reached(served, target);
    assert.ok(!seen.startsWith('upstream '), `${target} reached the upstream as ${seen.slice(9)}`);
  }
});

test('regression: guards hold for escaped letters and mixed-case hex; traversal, overlong and NUL forms are refused before any stage', async () => {
  const served = await front([when({ path: ['/admin/**', '/caf%C3%A9/**'] }, deny)]);
  for (const target of ['/%61dmin/users', '/%61%64%6D%69%6E/users', '/%61%64%6d%69%6e', '/admin//users', '/caf%c3%a9/x', '/caf%C3%a9']) {
    assert.is(await reached(served, target), 'HTTP/1.1 403 Forbidden', target);
  }
  // Refused by core's path checks (ERR_BAD_PATH), whatever the guard says.
  for (const target of ['/x/%2e%2e/admin', '/x/%2E%2e/admin', '/x/..%2Fadmin', '/x/%252e%252e/admin', '/x/%C0%AE%C0%AE/admin', '/x/%c0%ae./admin', '/a%00b', '/x/..;/admin', '/admin/./users']) {
    assert.is(await reached(served, target), 'HTTP/1.1 400 Bad Request', target);
  }
});

test('regression: what the upstream receives: the bytes as sent when no rule changes the path, the normal form when one does', async () => {
  const guarded = await front([when({ path: '/admin/**' }, deny)]);
  // %25 is not unreserved: /%2561dmin is the literal segment "%61dmin" (one decode), as nginx reads it.
  assert.is(await reached(guarded, '/%2561dmin/users?q=%61'), 'upstream /base/%2561dmin/users?q=%61');
  assert.is(await reached(guarded, '/caf%c3%a9/%7euser?q=%c3'), 'upstream /base/caf%c3%a9/%7euser?q=%c3');
  const rewritten = await front([rewritePath({ '/api': '/v1' }), when({ path: '/v1/admin/**' }, deny)]);
  assert.is(await reached(rewritten, '/api/caf%c3%a9/%7euser?q=%c3'), 'upstream /base/v1/caf%C3%A9/~user?q=%c3');
  assert.is(await reached(rewritten, '/other/%7euser'), 'upstream /base/other/%7euser');
  // A guard after the rewrite sees the rewritten path, normalised.
  assert.is(await reached(rewritten, '/%61pi/%61dmin/x'), 'HTTP/1.1 403 Forbidden');
  // RegExp rules get the normal form, so an escaped letter does not dodge them either.
  const regex = await front([rewritePath([[/^\/u\/(\d+)$/, '/users/$1']])]);
  assert.is(await reached(regex, '/%75/%34%32'), 'upstream /base/users/42');
});

test.run();
