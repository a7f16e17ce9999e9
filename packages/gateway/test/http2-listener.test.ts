// A TLS listener through the real bin offers HTTP/2 (ALPN h2) beside HTTP/1.1 (issue 19: "HTTP/2 on
// when TLS is on"): routing by `:authority`, the built-in endpoints and 404/405 over HTTP/2, WebSocket
// over HTTP/1.1 on the same port, the slow-client limits of both protocols, and SIGTERM with sessions open.
import { connect as http2Connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocket, WebSocketServer } from 'ws';
import { close, listen, startUpstream, tlsFixture, waitFor, type Upstream } from '@relay/testkit';
import { configDir, startBin, type ServingBin } from './bin.js';

const files = configDir();
let api: Upstream;
const chat = createServer();
const wss = new WebSocketServer({ server: chat });
wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo ${String(data)}`)));
let gateway: ServingBin;
/** Answers of `/slow` requests the upstream holds until the test releases them. */
const held: Array<() => void> = [];

test.before(async () => {
  api = await startUpstream((_req, res, seen) => {
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: seen.url }));
    // `/slow…` waits for the test's word: a request still in flight when SIGTERM comes.
    if (seen.url.startsWith('/slow')) held.push(answer);
    else answer();
  });
  const chatUrl = await listen(chat);
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  const config = files.write(
    'gateway.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }',
      'timeouts: { shutdown: 5000 }',
      'routes:',
      '  - name: api-host',
      '    match: { path: /who, host: api.example.com }',
      `    upstream: ${api.url}/api-host`,
      '  - name: any-host',
      '    match: { path: /who }',
      `    upstream: ${api.url}/any-host`,
      '  - name: posts',
      '    match: { path: /posts, methods: [POST, PUT] }',
      `    upstream: ${api.url}`,
      '  - name: slow',
      '    match: { path: /slow }',
      `    upstream: ${api.url}/slow`,
      '  - name: chat',
      '    match: { path: /chat }',
      `    upstream: ${chatUrl}`,
      '',
    ].join('\n'),
  );
  gateway = await startBin(['serve', config]);
});

test.after(async () => {
  await gateway?.stop('SIGKILL');
  for (const client of wss.clients) client.terminate();
  wss.close();
  await close(chat);
  await api.close();
  files.cleanup();
});

/** An HTTP/2 client session to the gateway, trusting the test certificate. */
function h2Session(): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`https://localhost:${gateway.port}`, { ca: tlsFixture.cert });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

interface H2Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on `session`, bounded at 10 s. */
function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error(`no answer to ${String(headers[':path'])} within 10 s`));
    }, 10_000);
    let answer: Omit<H2Answer, 'body'> = { status: 0, headers: {} };
    let body = '';
    stream.on('response', (head) => (answer = { status: Number(head[':status']), headers: head }));
    stream.on('data', (chunk: Buffer) => (body += chunk));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ ...answer, body });
    });
    stream.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function httpsGet(path: string): Promise<{ status: number; body: string; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`https://localhost:${gateway.port}${path}`, { ca: tlsFixture.cert, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, alpn: (res.socket as { alpnProtocol?: string | false }).alpnProtocol ?? null }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('HTTP/2 and HTTP/1.1 on one TLS port; over HTTP/2 the host routes by :authority (HTTP/2 has no Host header)', async () => {
  const session = await h2Session();
  try {
    assert.is(session.alpnProtocol, 'h2');
    const byHost = await h2Request(session, { ':path': '/who/x?q=1', ':authority': `API.example.com:${gateway.port}` });
    assert.is(byHost.status, 200);
    assert.is((JSON.parse(byHost.body) as { url: string }).url, '/api-host/x?q=1');
    const other = await h2Request(session, { ':path': '/who/x' });
    assert.is((JSON.parse(other.body) as { url: string }).url, '/any-host/x');
  } finally {
    session.close();
  }
  const http1 = await httpsGet('/who/y');
  assert.is(http1.alpn, false, 'a client offering no ALPN is served HTTP/1.1');
  assert.is(http1.status, 200);
  assert.is((JSON.parse(http1.body) as { url: string }).url, '/any-host/y');
});

test('over HTTP/2: /healthz, /metrics, 404 with no route, 405 with Allow', async () => {
  const session = await h2Session();
  try {
    const health = await h2Request(session, { ':path': '/healthz' });
    assert.equal([health.status, health.body], [200, 'ok\n']);
    const metrics = await h2Request(session, { ':path': '/metrics' });
    assert.is(metrics.status, 200);
    assert.match(metrics.body, /relay_gateway_requests_total\{route="any-host"\} \d+/);
    const none = await h2Request(session, { ':path': '/nowhere' });
    assert.is(none.status, 404);
    const method = await h2Request(session, { ':path': '/posts/1' });
    assert.is(method.status, 405);
    assert.is(method.headers.allow, 'POST, PUT');
  } finally {
    session.close();
  }
});

test('a WebSocket over HTTP/1.1 on the TLS listener (wss:)', async () => {
  const socket = new WebSocket(`wss://localhost:${gateway.port}/chat/room`, { ca: tlsFixture.cert });
  try {
    const reply = await new Promise<string>((resolve, reject) => {
      socket.once('open', () => socket.send('hi'));
      socket.once('message', (data) => resolve(String(data)));
      socket.once('error', reject);
      setTimeout(() => reject(new Error('no WebSocket echo within 10 s')), 10_000).unref();
    });
    assert.is(reply, 'echo hi');
  } finally {
    socket.terminate();
  }
});

/** The bytes an HTTP/1.1 TLS client gets after sending half a request head, until the gateway closes. */
function halfHead(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port: gateway.port, servername: 'localhost', ca: tlsFixture.cert, ALPNProtocols: ['http/1.1'] }, () => {
      socket.write('GET /who/x HTTP/1.1\r\nhost: localhost\r\n');
    });
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    setTimeout(() => {
      socket.destroy();
      reject(new Error('the half head was still open after 30 s'));
    }, 30_000).unref();
  });
}

/** How long until the gateway sends a GOAWAY on a session that stays silent after one request. */
async function idleGoAway(): Promise<number> {
  const session = await h2Session();
  try {
    await h2Request(session, { ':path': '/healthz' });
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      session.once('goaway', () => resolve());
      setTimeout(() => reject(new Error('no GOAWAY on an idle session within 30 s')), 30_000).unref();
    });
    return Date.now() - started;
  } finally {
    session.destroy();
  }
}

test('slow clients: an HTTP/1.1 head not finished in 10 s gets 408; an HTTP/2 session silent for 5 s gets a GOAWAY', async () => {
  // node:http2's own defaults would keep both open (a 60 s head timeout, no session timeout).
  const started = Date.now();
  const [received, idle] = await Promise.all([halfHead(), idleGoAway()]);
  assert.match(received, /^HTTP\/1\.1 408 /);
  assert.ok(Date.now() - started < 25_000, `the half head took ${Date.now() - started} ms`);
  assert.ok(idle > 2_000 && idle < 20_000, `GOAWAY after ${idle} ms of silence`);
});

test('an HTTP/2 session with a request waiting 7 s on a slow upstream is not idle: no GOAWAY, the next request uses it', async () => {
  // nginx's keepalive_timeout counts only while no request is open on the connection.
  const session = await h2Session();
  try {
    let goAway = false;
    session.once('goaway', () => (goAway = true));
    const waiting = h2Request(session, { ':path': '/slow/long-poll' });
    assert.ok(await waitFor(() => held.length === 1, 5_000), 'the upstream holds the request');
    await new Promise((resolve) => setTimeout(resolve, 7_000));
    held.shift()!();
    assert.is((await waiting).status, 200);
    assert.is(goAway, false, 'the session got a GOAWAY while its request was open');
    assert.is((await h2Request(session, { ':path': '/healthz' })).status, 200);
  } finally {
    for (const answer of held.splice(0)) answer();
    session.destroy();
  }
});

test('SIGTERM: every HTTP/2 session gets a GOAWAY at once, a request in flight on one finishes, the process exits 0', async () => {
  const [idle, busy] = await Promise.all([h2Session(), h2Session()]);
  try {
    const goAway = (session: ClientHttp2Session) =>
      new Promise<void>((resolve, reject) => {
        session.once('goaway', () => resolve());
        session.once('close', () => reject(new Error('a session closed without a GOAWAY')));
        // Well inside the 5 s idle timeout the PING below restarts: that GOAWAY would come too late.
        setTimeout(() => reject(new Error('no GOAWAY within 3 s of SIGTERM')), 3_000).unref();
      });
    const inFlight = h2Request(busy, { ':path': '/slow/request' });
    assert.ok(await waitFor(() => held.length === 1, 5_000), 'the upstream has the request before the signal');
    await new Promise((resolve) => idle.ping(resolve));
    const exited = gateway.stop('SIGTERM');
    // The idle session hears it while the other's request is still held upstream, not after the drain.
    await Promise.all([goAway(idle), goAway(busy)]);
    held.shift()!();
    const answer = await inFlight;
    assert.is(answer.status, 200);
    assert.is((JSON.parse(answer.body) as { url: string }).url, '/slow/request');
    assert.is(await exited, 0);
  } finally {
    for (const answer of held.splice(0)) answer();
    idle.destroy();
    busy.destroy();
  }
});

test.run();
