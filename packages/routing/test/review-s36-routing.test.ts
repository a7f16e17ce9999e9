// Review s36 (routing, issue 22), black box with a real relay, upstream and client: which path
// `rewritePath` and `when({ path })` see once `router()` has chosen a target with a base path of its
// own (README "Which path the stages see": "Every stage here works on the path under the target's
// base path"), and whether a path condition can be stepped around with an escaped unreserved
// character, which the upstream decodes (RFC 3986 6.2.2.2; nginx matches locations on the decoded URI).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay, type Stage } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { rewritePath, router, routes, when } from '../src/index.js';

let main: Upstream;
let regional: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

test.before(async () => {
  main = await startUpstream();
  regional = await startUpstream();
});

test.after(async () => {
  for (const served of fronts) await served.close();
  await Promise.all([main.close(), regional.close()]);
});

async function front(stages: Stage[], targetBaseUrl = main.url): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl, stages, logger: memoryLogger() }));
  fronts.push(served);
  return served;
}

/** A stage that answers 403 itself: a guard a condition puts in front of some paths. */
const deny: Stage = {
  name: 'deny',
  wrap: () =>
    function denyStage() {
      return Promise.resolve({ status: 403, statusMessage: '', headers: { 'content-length': '0' }, body: null });
    },
};

/** A stage that marks the request it runs for, so the upstream shows whether it ran. */
function mark(value: string): Stage {
  return {
    name: 'mark',
    wrap: (next) =>
      function markStage(request) {
        request.headers['x-mark'] = value;
        return next(request);
      },
  };
}

test('rewritePath after router() rewrites the path under the chosen target’s base path, query kept (README: stages see the path under the target’s base)', async () => {
  // router() puts the path under the chosen target's base (/v2); a prefix rule for /api must still
  // see /api/users, as it does for the relay's own target: /api/users?x=1 → /v2/users?x=1.
  const served = await front([router({ targets: { eu: `${regional.url}/v2` }, choose: () => 'eu' }), rewritePath({ '/api': '' })]);
  const response = await fetchRaw(`${served.url}/api/users?x=1`);
  assert.is(response.status, 200);
  assert.is(regional.requests.at(-1)!.url, '/v2/users?x=1');
});

test('when({ path }) after router() matches the client’s path, not the chosen target’s base path: a guarded path stays guarded', async () => {
  // With the relay's own target the mark runs for /admin/x; after router() chose a target with a
  // base path, the condition sees /v2/admin/x and the stage is skipped.
  const served = await front([router({ targets: { eu: `${regional.url}/v2` }, choose: () => 'eu' }), when({ path: '/admin/**' }, mark('admin'))]);
  const response = await fetchRaw(`${served.url}/admin/x`);
  assert.is(response.status, 200);
  const seen = regional.requests.at(-1)!;
  assert.is(seen.url, '/v2/admin/x');
  assert.is(seen.headers['x-mark'], 'admin', 'the when() stage did not run for /admin/x');
});

test('when({ path }) on the relay’s own target (no router): the stage runs; regression baseline', async () => {
  const served = await front([when({ path: '/admin/**' }, mark('admin'))], `${main.url}/v2`);
  assert.is((await fetchRaw(`${served.url}/admin/x?y=1`)).status, 200);
  assert.equal([main.requests.at(-1)!.url, main.requests.at(-1)!.headers['x-mark']], ['/v2/admin/x?y=1', 'admin']);
});

test('a path guard cannot be stepped around with an escaped unreserved letter (/%61dmin is /admin, RFC 3986 6.2.2.2)', async () => {
  // The upstream (node, Express, nginx…) decodes %61 to "a" and serves /admin; nginx matches its
  // locations after decoding, and the gateway decodes unreserved escapes before its own routes for
  // this very reason (packages/gateway/src/normalize-path.ts). A guard by path glob must hold.
  const before = main.requests.length;
  const served = await front([when({ path: '/admin/**' }, deny)]);
  assert.is((await fetchRaw(`${served.url}/admin/users`)).status, 403, 'the guard runs for /admin/users');
  const escaped = await fetchRaw(`${served.url}/%61dmin/users`);
  assert.is(escaped.status, 403, '/%61dmin/users went past the /admin/** guard to the upstream');
  assert.is(main.requests.length, before, 'a guarded request reached the upstream');
});

test('routes(): an escaped unreserved letter takes the same route as the plain path', async () => {
  const served = await front([
    routes([
      { when: { path: '/admin/**' }, stages: [mark('admin')] },
      { stages: [mark('public')] },
    ]),
  ]);
  assert.is((await fetchRaw(`${served.url}/admin/a`)).status, 200);
  assert.is(main.requests.at(-1)!.headers['x-mark'], 'admin');
  assert.is((await fetchRaw(`${served.url}/%61dmin/a`)).status, 200);
  assert.is(main.requests.at(-1)!.headers['x-mark'], 'admin', '/%61dmin/a took the public route');
});

test.run();
