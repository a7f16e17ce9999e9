// Review s36 (gateway, issues 19 and 22), black box through the real `relay` bin: TLS listeners and
// HTTP/2 (issue 19: "HTTP/2 on when TLS is on, once the HTTP/2 issue lands"; issue 15 has landed),
// how a route's `match.path` and the request path are normalised before they are compared
// (RFC 3986 §6.2.2), config errors naming their line (docs/gateway.md "Validation"), the 405 of a
// WebSocket handshake, SIGTERM with an open WebSocket session, and path safety / query bytes /
// trailing slashes / host forms through prefixes and upstreamPrefix (regression coverage).
import { connect as http2Connect } from 'node:http2';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { createServer } from 'node:http';
import { close, fetchRaw, listen, sendRaw, startUpstream, tlsFixture, type Upstream } from '@relay/testkit';
import { loadConfig } from '../src/index.js';
import { configDir, rejection, startBin, type ServingBin } from './bin.js';

const files = configDir();
let api: Upstream;
let gateway: ServingBin;

test.before(async () => {
  api = await startUpstream();
  const config = files.write(
    'gateway.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0 }',
      'routes:',
      '  - name: tilde',
      '    match: { path: /%7Euser }',
      '    upstream: ${API_URL}',
      '  - name: cafe',
      '    match: { path: /caf%C3%A9 }',
      '    upstream: ${API_URL}',
      '  - name: api',
      '    match: { path: /api/ }',
      '    upstream: ${API_URL}/base',
      '    upstreamPrefix: /v1',
      '  - name: hosts',
      '    match: { path: /h, host: [api.example.com, "*.example.com"] }',
      '    upstream: ${API_URL}',
      '  - name: posts',
      '    match: { path: /posts, methods: [POST] }',
      '    upstream: ${API_URL}',
      '',
    ].join('\n'),
  );
  gateway = await startBin(['serve', config], { env: { API_URL: api.url } });
});

test.after(async () => {
  await gateway?.stop('SIGKILL');
  await api.close();
  files.cleanup();
});

/** The path the upstream saw for this request, or the status line when it reached none (no route: 404). */
async function seenByApi(target: string, headers: Record<string, string> = {}): Promise<string> {
  const before = api.requests.length;
  const response = await sendRaw(gateway.port, `GET ${target} HTTP/1.1\r\nhost: ${headers.host ?? 'gw'}\r\nconnection: close\r\n\r\n`);
  return api.requests.length === before ? response.split('\r\n')[0]! : api.requests.at(-1)!.url;
}

test('match.path written with an escaped unreserved character (/%7Euser) matches /~user and /%7Euser, as the request side is normalised (RFC 3986 6.2.2.2)', async () => {
  // docs/gateway.md: "escapes of unreserved characters in the path are decoded (/%6Cogin is /login)"
  // before matching; the config's prefix is accepted with the same escape but never normalised,
  // so the route can never match: 404 here, or a catch-all route (skipping this route's rateLimit).
  assert.is(await seenByApi('/~user/profile'), '/profile');
  assert.is(await seenByApi('/%7Euser/profile'), '/profile');
});

test('percent-encoding hex digits are case-insensitive: /caf%c3%a9 takes the /caf%C3%A9 route (RFC 3986 6.2.2.1; nginx decodes before choosing a location)', async () => {
  assert.is(await seenByApi('/caf%C3%A9/menu'), '/menu', 'the route as written');
  assert.is(await seenByApi('/caf%c3%a9/menu'), '/menu', 'lower-case hex');
});

test('a prefix written with a trailing slash (/api/) takes /api and /api/x; the query is kept byte for byte; trailing slashes kept', async () => {
  // docs/path-mapping.md, "The mapping, case by case".
  assert.is(await seenByApi('/api'), '/base/v1');
  assert.is(await seenByApi('/api/'), '/base/v1/');
  assert.is(await seenByApi('/api/x/'), '/base/v1/x/');
  assert.is(await seenByApi("/api/search?q='x'&tag=a+b&next=%2F&e="), "/base/v1/search?q='x'&tag=a+b&next=%2F&e=");
  assert.is(await seenByApi('/api?x=1'), '/base/v1?x=1');
  assert.is(await seenByApi('/api/x?a=/../..'), '/base/v1/x?a=/../..', 'dot segments in the query are data, not path');
});

test('no traversal form under a prefix reaches any upstream, after the prefix is stripped and upstreamPrefix joined', async () => {
  // docs/path-mapping.md, "A request can never leave the prefix".
  const before = api.requests.length;
  for (const target of [
    '/api/..%2f..%2fetc/passwd',
    '/api/%2e%2e/x',
    '/api/.%2E/x',
    '/api/%252e%252e/x',
    '/api/x/..',
    '/api/%2F%2Fevil.example/x',
    '/api/%5c..%5cx',
    '/api/..;/x',
    '/api/a%00b',
    '/api/%c0%ae%c0%ae/x',
    'http://gw/api/../x',
  ]) {
    const response = await sendRaw(gateway.port, `GET ${target} HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 400 /, target);
    assert.not.match(response, /127\.0\.0\.1|base|v1/, `${target}: the error body names internals`);
  }
  assert.is(api.requests.length, before);
  // An encoded slash right after the prefix is not on a segment boundary: not the /api route.
  assert.match(await seenByApi('/api%2f../x'), /^HTTP\/1\.1 404 /);
});

test('hosts: compared without case, port or trailing dot; a wildcard takes one label, not the bare suffix', async () => {
  for (const host of ['api.example.com', 'API.Example.COM', 'api.example.com.', 'api.example.com:8443', 'xn--bcher-kva.example.com']) {
    assert.is(await seenByApi('/h/x', { host }), '/x', host);
  }
  assert.match(await seenByApi('/h/x', { host: 'example.com' }), /^HTTP\/1\.1 404 /);
  assert.match(await seenByApi('/h/x', { host: 'a.b.example.com' }), /^HTTP\/1\.1 404 /);
});

test('a WebSocket handshake on a path whose routes take other methods: 405 with Allow (RFC 9110 15.5.6 "MUST generate an Allow header")', async () => {
  // The HTTP side answers 405 with Allow (packages/gateway/README.md, "Errors it raises").
  const handshake = [
    'GET /posts/live HTTP/1.1',
    'host: gw',
    'connection: upgrade',
    'upgrade: websocket',
    'sec-websocket-version: 13',
    'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==',
    '',
    '',
  ].join('\r\n');
  const response = await sendRaw(gateway.port, handshake);
  assert.match(response, /^HTTP\/1\.1 405 /);
  assert.match(response, /\r\nallow: POST\r\n/i, `no Allow header: ${JSON.stringify(response)}`);
});

test('config errors name their line: an unset environment variable (docs/gateway.md: "Every problem is one line: the file, the line, the path")', async () => {
  const envFile = files.write('env.yaml', ['listen: [{ port: 8080 }]', 'routes:', '  - match: { path: /a }', '    upstream: ${NO_SUCH_RELAY_VAR_S36}', ''].join('\n'));
  const envError = await rejection(loadConfig(envFile));
  assert.is(envError.issues[0]!.path, 'routes[0].upstream');
  assert.is(envError.issues[0]!.line, 4, `no line: ${envError.message}`);
  assert.match(envError.message, new RegExp(`^${envFile}:4: routes\\[0\\]\\.upstream: environment variable`));
});

test('config errors name their line: a value the route relay or a stage factory refuses (docs/gateway.md "Validation")', async () => {
  // Credentials in the URL pass the schema and are refused by core's createRelay (the same for any factory check).
  const credentialsFile = files.write(
    'credentials.yaml',
    ['listen: [{ port: 8080 }]', 'routes:', '  - match: { path: /a }', '    upstream: http://svc:pw@127.0.0.1:9000', ''].join('\n'),
  );
  const { Generation, newSharedStats } = await import('../src/generation.js');
  const { memoryLogger } = await import('@relay/testkit');
  const loaded = await loadConfig(credentialsFile);
  let built: unknown = null;
  try {
    new Generation({ number: 0, loaded, shared: newSharedStats(), logger: memoryLogger() });
  } catch (error) {
    built = error;
  }
  const issues = (built as { issues: Array<{ path: string; line?: number }> }).issues;
  assert.is(issues[0]!.path, 'routes[0].upstream');
  assert.is(issues[0]!.line, 4, `no line: ${(built as Error).message}`);
});

test('an HTTPS listener negotiates HTTP/2 (ALPN h2) and routes the request (issue 19: "HTTP/2 on when TLS is on")', async () => {
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  const config = files.write(
    'tls.yaml',
    ['listen:', '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }', 'routes:', '  - match: { path: /api }', `    upstream: ${api.url}`, ''].join('\n'),
  );
  const own = await startBin(['serve', config]);
  try {
    const result = await new Promise<{ status: number; body: string } | Error>((resolve) => {
      const session = http2Connect(`https://localhost:${own.port}`, { ca: tlsFixture.cert });
      const timer = setTimeout(() => {
        session.destroy();
        resolve(new Error('timed out'));
      }, 10_000);
      session.on('error', (error) => {
        clearTimeout(timer);
        session.destroy();
        resolve(error);
      });
      const stream = session.request({ ':path': '/api/h2?x=1' });
      stream.on('error', () => {});
      let status = 0;
      let body = '';
      stream.on('response', (headers) => (status = Number(headers[':status'])));
      stream.on('data', (chunk: Buffer) => (body += chunk));
      stream.on('end', () => {
        clearTimeout(timer);
        session.close();
        resolve({ status, body });
      });
    });
    assert.not.instance(result, Error, `HTTP/2 over TLS failed: ${(result as Error).message}`);
    const { status, body } = result as { status: number; body: string };
    assert.is(status, 200);
    assert.is((JSON.parse(body) as { url: string }).url, '/h2?x=1');
  } finally {
    await own.stop('SIGKILL');
  }
});

test('SIGTERM with an open WebSocket session: the session is closed (1001 going away) and the process exits 0 within the shutdown timeout', async () => {
  // docs/gateway.md, "Workers"/"Health, metrics, logs, exit codes": SIGTERM drains and exits 0; the
  // reload path closes what is left with 1001, as nginx's worker_shutdown_timeout closes upgraded connections.
  const chat = createServer();
  const wss = new WebSocketServer({ server: chat });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(String(data))));
  const chatUrl = await listen(chat);
  const config = files.write(
    'ws.yaml',
    ['listen: [{ host: 127.0.0.1, port: 0 }]', 'timeouts: { shutdown: 2000 }', 'routes:', '  - match: { path: /chat }', `    upstream: ${chatUrl}`, ''].join('\n'),
  );
  const own = await startBin(['serve', config]);
  try {
    const socket = new WebSocket(`${own.url.replace('http:', 'ws:')}/chat/room`);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => socket.send('hi'));
      socket.once('message', () => resolve());
      socket.once('error', reject);
    });
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    const started = Date.now();
    const code = await own.stop('SIGTERM');
    const elapsed = Date.now() - started;
    assert.is(code, 0);
    assert.ok(elapsed < 12_000, `took ${elapsed} ms with a 2000 ms shutdown timeout`);
    assert.ok([1001, 1006].includes(await closed));
  } finally {
    await own.stop('SIGKILL');
    for (const client of wss.clients) client.terminate();
    wss.close();
    await close(chat);
  }
});

test('a plain request on a path whose routes take other methods: 405 with Allow, nothing sent', async () => {
  const before = api.requests.length;
  const response = await fetchRaw(`${gateway.url}/posts/1`);
  assert.is(response.status, 405);
  assert.is(response.headers.allow, 'POST');
  assert.is(api.requests.length, before);
});

test.run();
