// Review s36b (gateway, today's commit "one percent-encoding normal form for every routing decision"),
// createGateway in-process on real sockets, raw request lines: whether a route with a prefix of its
// own (and so its own rateLimit, auth, upstream) can be stepped around to a catch-all route now that
// the request path is normalised with decodeUnreserved and forwarded in that form; how
// upstreamPrefix joins a normalised path; and the config's prefixes, normalised at load, against the
// dot-segment check. References: RFC 3986 §2.1, §2.4, §6.2.2; nginx ngx_http_parse_complex_uri (locations
// matched on the decoded URI; 400 for a "%" without two hex digits; %2F decoded into "/"); Envoy
// path_with_escaped_slashes_action (CVE-2021-29492); docs/gateway.md "Routes".
import { createServer, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { createGateway, loadConfig, validateConfig, type Gateway } from '../src/index.js';
import { createLogger } from '../src/log.js';
import { configDir } from './bin.js';

const files = configDir();
const logger = createLogger({ level: 'error', stream: { write: () => true } as unknown as NodeJS.WritableStream });
let admin: Upstream;
let rest: Upstream;
let gateway: Gateway;
let server: Server;
let port: number;

test.before(async () => {
  admin = await startUpstream();
  rest = await startUpstream();
  const file = files.write(
    'gateway.yaml',
    [
      'listen: [{ port: 0 }]',
      'health: { path: /healthz }',
      'routes:',
      '  - name: admin',
      '    match: { path: /admin }',
      '    stripPrefix: false',
      `    upstream: ${admin.url}`,
      '    rateLimit: { points: 1000, duration: 60000 }',
      '  - name: api',
      '    match: { path: /api }',
      `    upstream: ${rest.url}/base`,
      '    upstreamPrefix: /v1',
      '  - name: rest',
      `    upstream: ${rest.url}`,
      '',
    ].join('\n'),
  );
  gateway = createGateway(await loadConfig(file), { logger });
  await gateway.startup();
  server = createServer(gateway.handle);
  port = Number(new URL(await listen(server)).port);
});

test.after(async () => {
  await close(server);
  await gateway.shutdown(1_000);
  await Promise.all([admin.close(), rest.close()]);
  files.cleanup();
});

/** Where a raw request line went: `admin <url>`, `rest <url>`, or the gateway's status line when no upstream saw it. */
async function reached(target: string): Promise<string> {
  const [a, r] = [admin.requests.length, rest.requests.length];
  const response = await sendRaw(port, `GET ${target} HTTP/1.1\r\nhost: gw.test\r\nconnection: close\r\n\r\n`);
  if (admin.requests.length > a) return `admin ${admin.requests.at(-1)!.url}`;
  if (rest.requests.length > r) return `rest ${rest.requests.at(-1)!.url}`;
  return response.split('\r\n')[0]!;
}

test('the /admin route cannot be stepped around with a broken escape that normalises into one (/%6%31dmin is forwarded as /%61dmin)', async () => {
  // decodeUnreserved keeps the lone "%" of "%6" and decodes "%31" to "1": the gateway matches
  // "/%61dmin/users" (not under /admin), picks the catch-all and forwards that form, which the
  // upstream decodes to /admin/users, past the admin route's rateLimit/auth. nginx answers 400 to
  // a "%" without two hex digits (RFC 3986 §2.1, §2.4). Expected: 400, or the admin route; never the catch-all.
  assert.is(await reached('/%61dmin/users'), 'admin /admin/users', "today's fix, baseline");
  for (const target of ['/%6%31dmin/users', '/%%36%31dmin/users']) {
    const seen = await reached(target);
    assert.ok(!seen.startsWith('rest '), `${target} went to the catch-all route as ${seen.slice(5)}`);
  }
});

test('the /admin route cannot be stepped around with a back slash (/admin\\users): refused, never the catch-all', async () => {
  // Core itself reads %2F, %5C and "\" as separators when it refuses "/a%2F..%2Fb" (an upstream may
  // decode them); under that reading /admin%2Fusers is /admin/users. nginx decodes %2F before
  // choosing a location; Envoy (CVE-2021-29492) offers REJECT_REQUEST or UNESCAPE_AND_REDIRECT, the
  // latter Envoy Gateway's default; Apache and Tomcat refuse %2F; WHATWG URL parsing turns "\" into "/".
  // Expected: a 4xx refusal or the admin route; never the catch-all. Chosen: a raw "\" is refused (400,
  // as Tomcat and Spring's firewall do); %2F and %5C stay encoded and are no separators for routing
  // (Envoy's default, KEEP_UNCHANGED; GitLab's API puts %2F in segments), as docs/path-mapping.md says.
  for (const target of ['/admin\\users', '/%61dmin\\users']) {
    const seen = await reached(target);
    assert.ok(!seen.startsWith('rest '), `${target} went to the catch-all route as ${seen.slice(5)}`);
  }
});

test('config prefixes hiding a dot segment behind %2F or a double escape are refused, as the same bytes in a client path are', () => {
  // schema.ts: "the dot check runs after [normalisation], so /%2E%2E is refused like /..". Core refuses
  // a client path "/a%2F%2E%2E" or "/a/%252E%252E" (assertSafePath: encoded separators, several
  // decoding levels); as an upstreamPrefix the same bytes go to every request's upstream path.
  for (const path of ['/a%2F%2E%2E', '/a%2F..', '/a/%252E%252E', '/a%5C%2E%2E']) {
    for (const where of ['match', 'upstreamPrefix'] as const) {
      const route = where === 'match' ? { upstream: 'http://a', match: { path } } : { upstream: 'http://a', upstreamPrefix: path };
      assert.throws(() => validateConfig({ listen: [{ port: 1 }], routes: [route] }, 'g.json'), /\. or \.\./, `${where} ${path} was accepted`);
    }
  }
});

test('regression: escaped letters and mixed-case hex take the route; the normal form is forwarded; the query and double escapes stay as sent', async () => {
  assert.is(await reached('/%61%64%6d%69%6e/users'), 'admin /admin/users');
  assert.is(await reached('/admin/caf%c3%a9?q=%c3%61'), 'admin /admin/caf%C3%A9?q=%c3%61');
  assert.is(await reached('/admin//users'), 'admin /admin//users');
  assert.is(await reached('/%68ealthz').then((line) => line.startsWith('HTTP/1.1 200')), true, 'the endpoint path is normalised too');
  // %25 is not unreserved: one decode gives the literal segment "%61dmin", as nginx reads it.
  assert.is(await reached('/%2561dmin/users'), 'rest /%2561dmin/users');
  // Case still counts once decoded (nginx locations are case-sensitive too).
  assert.is(await reached('/%41dmin'), 'rest /Admin');
  // upstreamPrefix joined to the normalised rest of the path, under the upstream's own base path.
  assert.is(await reached('/%61pi/%7euser?x=%2F'), 'rest /base/v1/~user?x=%2F');
  assert.is(await reached('/api'), 'rest /base/v1');
});

test('regression: traversal, overlong UTF-8 and NUL forms are refused before any route forwards them', async () => {
  for (const target of ['/api/%2e%2e/admin', '/api/%2E%2e/x', '/api/..%2Fadmin', '/api/%252e%252e/x', '/api/%%32%65%%32%65/admin', '/api/%C0%AE%C0%AE/x', '/api/%c0%ae./x', '/api/a%00', '/api/..;/admin', '/%2F/evil', '/api/./x']) {
    assert.is(await reached(target), 'HTTP/1.1 400 Bad Request', target);
  }
  // Raw bytes outside ASCII are refused by the parser or core: no second spelling of /caf%C3%A9.
  assert.is(await reached('/admin/caf\u00c3\u00a9'), 'HTTP/1.1 400 Bad Request');
});

test.run();
