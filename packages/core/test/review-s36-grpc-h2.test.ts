// Review s36 (issue 15), HTTP/2 both sides without gRPC: event streams over http2Transport and over
// an HTTP/2 front, connection-specific headers from an HTTP/1.1 upstream to an HTTP/2 client
// (RFC 9113 §8.2.2), trailers crossing protocols (HTTP/1.1 client ↔ h2c upstream, HTTP/2 client ↔
// HTTP/1.1 upstream), forbidden trailer fields, HTTP/2 cookie crumbs to HTTP/1.1 upstreams
// (RFC 9113 §8.2.3), 103 to HTTP/1.0 clients, and curl (--http2-prior-knowledge on h2c, --http2
// over TLS) as the client.
import { execFile } from 'node:child_process';
import http from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import net, { type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { listen, listenHttp2, sendRaw, startUpstream, tlsFixture } from '@relay/testkit';
import { createRelay, http2Transport, type Relay, type RelayOptions } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';
import { h2FrontSession } from './http2-helpers.js';

const test = suite('review s36: HTTP/2 both sides');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

async function h2Upstream(handler: StreamHandler): Promise<{ url: string }> {
  const sessions: http2.ServerHttp2Session[] = [];
  const server = http2.createServer();
  server.on('session', (session) => {
    sessions.push(session);
    session.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    handler(stream, headers);
  });
  const url = await listen(server as unknown as http.Server);
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  );
  return { url };
}

async function relayWith(options: RelayOptions): Promise<Relay> {
  const relay = createRelay(options);
  await relay.startup();
  closers.push(() => relay.shutdown({ timeout: 500 }));
  return relay;
}

interface H2Answer {
  headers: IncomingHttpHeaders;
  body: string;
  trailers: IncomingHttpHeaders;
  ended: boolean;
  rstCode: number | undefined;
  events: Array<{ text: string; at: number }>;
}

function collect(stream: http2.ClientHttp2Stream, limitMs = 6000): Promise<H2Answer> {
  return new Promise((resolve) => {
    const answer: H2Answer = { headers: {}, body: '', trailers: {}, ended: false, rstCode: undefined, events: [] };
    const timer = setTimeout(finish, limitMs);
    function finish() {
      clearTimeout(timer);
      answer.rstCode = stream.rstCode;
      resolve(answer);
    }
    stream.on('response', (headers) => (answer.headers = headers));
    stream.on('trailers', (trailers) => (answer.trailers = trailers));
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      answer.body += chunk;
      answer.events.push({ text: chunk, at: Date.now() });
    });
    stream.on('end', () => (answer.ended = true));
    stream.on('error', () => {});
    stream.on('close', finish);
  });
}

/** An SSE upstream (HTTP/2) sending an event, staying quiet `quietMs`, sending another, then ending. */
const sseHandler =
  (quietMs: number): StreamHandler =>
  (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    stream.write('data: one\n\n');
    const timer = setTimeout(() => {
      if (stream.destroyed) return;
      stream.write('data: two\n\n');
      stream.end();
    }, quietMs);
    stream.on('close', () => clearTimeout(timer));
  };

test('http2Transport: an SSE stream from an h2c upstream quiet for 3x timeout.read keeps going and ends whole', async () => {
  // Issue 15, "Event streams": an SSE response "is not cut for being quiet longer than the read
  // timeout" (Must show: "an SSE stream quiet for 3x the read timeout that keeps going"); docs/retries.md
  // states the rule for every transport, httpTransport/gotTransport/undiciTransport implement it.
  const upstream = await h2Upstream(sseHandler(900));
  const relay = await relayWith({ targetBaseUrl: upstream.url, transport: http2Transport(), timeout: { read: 300 } });
  const session = await h2FrontSession(closers, relay);
  const stream = session.request({ ':method': 'GET', ':path': '/events', accept: 'text/event-stream' });
  stream.end();
  const answer = await collect(stream);
  assert.is(answer.headers[':status'], 200);
  assert.is(answer.body, 'data: one\n\ndata: two\n\n', `rstCode ${answer.rstCode}`);
  assert.ok(answer.ended, 'the stream ended cleanly');
});

test('http2Transport: an SSE stream quiet for 3x timeout.read reaches an HTTP/1.1 client whole', async () => {
  // Same rule as above, with an HTTP/1.1 client (docs/retries.md "Event streams are not cut for being quiet").
  const upstream = await h2Upstream(sseHandler(900));
  const relay = await relayWith({ targetBaseUrl: upstream.url, transport: http2Transport(), timeout: { read: 300 } });
  const server = http.createServer(relay.handle);
  const url = await listen(server);
  closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const outcome = await new Promise<string>((resolve) => {
    http.get(`${url}/events`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(`complete: ${JSON.stringify(body)}`));
      res.on('aborted', () => resolve(`aborted: ${JSON.stringify(body)}`));
      res.on('error', () => resolve(`error: ${JSON.stringify(body)}`));
    }).on('error', (error) => resolve(`request error ${error.message}`));
  });
  assert.is(outcome, 'complete: "data: one\\n\\ndata: two\\n\\n"');
});

test('http2Transport: a plain (non event-stream) download that stalls longer than timeout.read is still cut', async () => {
  // Issue 15: "a stalled plain download still is [cut]". Regression guard for the rule above.
  const upstream = await h2Upstream((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
    stream.write('part');
    const timer = setTimeout(() => !stream.destroyed && stream.end('rest'), 1500);
    stream.on('close', () => clearTimeout(timer));
  });
  const relay = await relayWith({ targetBaseUrl: upstream.url, transport: http2Transport(), timeout: { read: 300 } });
  const session = await h2FrontSession(closers, relay);
  const stream = session.request({ ':method': 'GET', ':path': '/download' });
  stream.end();
  const answer = await collect(stream);
  assert.is(answer.body, 'part');
  assert.ok(answer.rstCode !== undefined && answer.rstCode !== 0, `the stream was reset (rstCode ${answer.rstCode})`);
});

test('HTTP/2 front, httpTransport: an SSE stream quiet for 3x timeout.read reaches the HTTP/2 client with every event', async () => {
  // Issue 15 Must show: "an SSE stream quiet for 3x the read timeout that keeps going", over HTTP/2.
  const upstream = await startUpstream(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: one\n\n');
      setTimeout(() => res.end('data: two\n\n'), 900);
    },
    { streaming: true },
  );
  closers.push(upstream.close);
  const relay = await relayWith({ targetBaseUrl: upstream.url, timeout: { read: 300 } });
  const session = await h2FrontSession(closers, relay);
  const stream = session.request({ ':method': 'GET', ':path': '/events' });
  stream.end();
  const answer = await collect(stream);
  assert.is(answer.body, 'data: one\n\ndata: two\n\n');
  assert.ok(answer.ended);
  // The first event is delivered at once, not held until the stream ends.
  assert.ok(answer.events.length >= 2 && answer.events[1]!.at - answer.events[0]!.at > 500, JSON.stringify(answer.events));
});

test('HTTP/1.1 upstream → HTTP/2 client: Connection, Keep-Alive, Transfer-Encoding, Proxy-Connection, Upgrade, TE and Connection-listed fields never reach the HTTP/2 response', async () => {
  // RFC 9113 §8.2.2: an intermediary MUST remove connection-specific header fields when
  // converting HTTP/1.x to HTTP/2 (or the response is malformed); RFC 9110 §7.6.1 for the listed ones.
  const upstream = await startUpstream((_req, res) => {
    const socket = res.socket as Socket;
    socket.write(
      'HTTP/1.1 200 OK\r\n' +
        'Content-Type: text/plain\r\n' +
        'Connection: keep-alive, X-Hop\r\n' +
        'Keep-Alive: timeout=5, max=100\r\n' +
        'Proxy-Connection: keep-alive\r\n' +
        'Upgrade: h2c\r\n' +
        'TE: trailers\r\n' +
        'X-Hop: secret\r\n' +
        'X-End: kept\r\n' +
        'Transfer-Encoding: chunked\r\n' +
        '\r\n' +
        '5\r\nhello\r\n0\r\n\r\n',
    );
    // The upstream wrote its own answer on the socket: node's response is left unfinished on purpose.
    (res as unknown as { _headerSent: boolean })._headerSent = true;
  });
  closers.push(upstream.close);
  const relay = await relayWith({ targetBaseUrl: upstream.url });
  const session = await h2FrontSession(closers, relay);
  const stream = session.request({ ':method': 'GET', ':path': '/hop' });
  stream.end();
  const answer = await collect(stream);
  assert.is(answer.headers[':status'], 200);
  assert.is(answer.body, 'hello');
  assert.is(answer.headers['x-end'], 'kept');
  for (const name of ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'x-hop', 'transfer-encoding']) {
    assert.is(answer.headers[name], undefined, `${name} reached the HTTP/2 client`);
  }
});

test('HTTP/2 client with TE: trailers → HTTP/1.1 upstream: the chunked trailers (checksum) reach the HTTP/2 client', async () => {
  // Issue 15 "Trailers": relayed when the client can take them, "HTTP/2 always".
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
    res.write('body');
    res.addTrailers({ 'x-checksum': 'sha-1234' });
    res.end();
  });
  closers.push(upstream.close);
  const relay = await relayWith({ targetBaseUrl: upstream.url });
  const session = await h2FrontSession(closers, relay);
  const stream = session.request({ ':method': 'GET', ':path': '/t', te: 'trailers' });
  stream.end();
  const answer = await collect(stream);
  assert.is(answer.body, 'body');
  assert.is(answer.trailers['x-checksum'], 'sha-1234');
  // The upstream is told the downstream takes trailers (RFC 9110 §10.1.4, TE is per hop).
  assert.match(String(upstream.requests[0]!.headers.te ?? ''), /trailers/);
});

test('HTTP/1.1 client with TE: trailers → h2c upstream (gRPC-style trailers): the chunked response ends with the trailer fields', async () => {
  // Issue 15 "Trailers": HTTP/1.1 clients get them when they sent `TE: trailers`.
  const upstream = await h2Upstream((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '5', 'grpc-message': 'not%20found' }));
    stream.end('frame');
  });
  const relay = await relayWith({ targetBaseUrl: upstream.url, transport: http2Transport() });
  const server = http.createServer(relay.handle);
  const url = await listen(server);
  closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const answer = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
    http.get(`${url}/svc/Method`, { agent: false, headers: { te: 'trailers' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ body, trailers: res.trailers }));
      res.on('error', reject);
    }).on('error', reject);
  });
  assert.is(answer.body, 'frame');
  assert.is(answer.trailers['grpc-status'], '5');
  assert.is(answer.trailers['grpc-message'], 'not%20found');
});

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : Number((error as { code?: number }).code ?? 1), stdout, stderr });
    });
  });
}

test('curl --http2-prior-knowledge through an h2c front and curl --http2 over TLS (ALPN h2) both get the upstream answer over HTTP/2', async () => {
  // Issue 15 "Client side": http2.createServer and createSecureServer with relay.handle, real clients.
  const upstream = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive', 'keep-alive': 'timeout=5' });
    res.end(`host=${req.headers.host} xfh=${req.headers['x-forwarded-host']} proto=${req.headers['x-forwarded-proto']}`);
  });
  closers.push(upstream.close);
  const relay = await relayWith({ targetBaseUrl: upstream.url });
  const h2c = await listenHttp2(http2.createServer(relay.handle));
  closers.push(() => h2c.close());
  const tls = await listenHttp2(http2.createSecureServer({ ...tlsFixture, allowHTTP1: true }, relay.handle));
  closers.push(() => tls.close());
  const plain = await curl(['--http2-prior-knowledge', '-i', `${h2c.url}/a`]);
  assert.is(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^HTTP\/2 200/);
  assert.not.match(plain.stdout, /\nkeep-alive:|\nconnection:/i);
  const port = new URL(tls.url).port;
  const secure = await curl(['--http2', '-k', '-i', '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/b`]);
  assert.is(secure.code, 0, secure.stderr);
  assert.match(secure.stdout, /^HTTP\/2 200/);
  assert.match(secure.stdout, /proto=https/);
  const http1 = await curl(['--http1.1', '-k', '-i', '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/c`]);
  assert.is(http1.code, 0, http1.stderr);
  assert.match(http1.stdout, /^HTTP\/1\.1 200/);
});

test('h2c upstream answering headers then trailers with no DATA: both an HTTP/2 client and an HTTP/1.1 client (TE: trailers) get the trailers', async () => {
  // Issue 15 "Trailers"; an empty body followed by a trailer section is a valid HTTP/2 response (RFC 9113 §8.1).
  const upstream = await h2Upstream((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-sum': '0' }));
    stream.end();
  });
  const relay = await relayWith({ targetBaseUrl: upstream.url, transport: http2Transport() });
  const session = await h2FrontSession(closers, relay);
  const stream = session.request({ ':method': 'POST', ':path': '/svc/Empty', 'content-type': 'application/grpc', te: 'trailers' });
  stream.end();
  const h2 = await collect(stream);
  assert.is(h2.headers[':status'], 200);
  assert.is(h2.body, '');
  const status = h2.trailers['grpc-status'] ?? h2.headers['grpc-status'];
  assert.is(status, '0', `trailers ${JSON.stringify(h2.trailers)}`);
  const server = http.createServer(relay.handle);
  const url = await listen(server);
  closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const h1 = await new Promise<{ body: string; trailers: NodeJS.Dict<string>; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = http.request(`${url}/svc/Empty`, { method: 'POST', agent: false, headers: { te: 'trailers', 'content-type': 'application/grpc' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ body, trailers: res.trailers, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  assert.is(h1.trailers['grpc-status'] ?? h1.headers['grpc-status'], '0', `trailers ${JSON.stringify(h1.trailers)} headers ${JSON.stringify(h1.headers)}`);
});

for (const [name, transport] of [
  ['httpTransport', undefined],
  ['undiciTransport', () => undiciTransport()],
  ['gotTransport', () => gotTransport()],
] as const) {
  test(`HTTP/2 client sending its Cookie as several fields (crumbs) → HTTP/1.1 upstream over ${name}: one Cookie line, joined with "; "`, async () => {
    // RFC 9113 §8.2.3: multiple cookie fields "MUST be concatenated into a single octet string using
    // the two-octet delimiter of 0x3b, 0x20 ("; ") before being passed into a non-HTTP/2 context, such
    // as an HTTP/1.1 connection". Browsers send crumbs over HTTP/2; nginx (ngx_http_v2_construct_cookie_header)
    // and Envoy join them. Frameworks that read one Cookie line otherwise lose cookies.
    const upstream = await startUpstream();
    closers.push(upstream.close);
    const relay = await relayWith({ targetBaseUrl: upstream.url, ...(transport === undefined ? {} : { transport: transport() }) });
    const session = await h2FrontSession(closers, relay);
    const stream = session.request({ ':method': 'GET', ':path': '/c', cookie: ['a=1', 'b=2', 'c=3'] });
    stream.end();
    const answer = await collect(stream);
    assert.is(answer.headers[':status'], 200);
    const raw = upstream.requests[0]!.rawHeaders;
    const lines = raw.filter((_value, index) => index % 2 === 1 && raw[index - 1]!.toLowerCase() === 'cookie');
    assert.equal(lines, ['a=1; b=2; c=3'], `the upstream got the Cookie lines ${JSON.stringify(lines)}`);
  });
}

test('HTTP/1.1 client → h2c upstream: connection-specific request headers never reach the HTTP/2 upstream, TE only as trailers, a chunked body arrives whole', async () => {
  // RFC 9113 §8.2.2: an intermediary transforming HTTP/1.x into HTTP/2 MUST remove them; TE may only be "trailers".
  let seen: IncomingHttpHeaders = {};
  let body = '';
  const upstream = await h2Upstream((stream, headers) => {
    seen = headers;
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
  });
  const relay = await relayWith({ targetBaseUrl: upstream.url, transport: http2Transport() });
  const server = http.createServer(relay.handle);
  const url = await listen(server);
  closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const port = new URL(url).port;
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.write(
        'POST /up HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n' +
          'Proxy-Connection: keep-alive\r\nTE: gzip, trailers\r\nX-Hop: secret\r\nX-End: kept\r\nTransfer-Encoding: chunked\r\n\r\n' +
          '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
      );
    });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\r\n\r\n') && /ok/.test(text)) {
        socket.destroy();
        resolve(text);
      }
    });
    socket.on('error', reject);
    setTimeout(() => { socket.destroy(); resolve(text); }, 4000);
  });
  assert.match(answer, /^HTTP\/1\.1 200/);
  assert.is(body, 'abcde');
  assert.is(seen['x-end'], 'kept');
  assert.is(seen.te, 'trailers');
  for (const name of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'x-hop', 'host']) assert.is(seen[name], undefined, `${name} reached the HTTP/2 upstream`);
});

test('http2Transport: response trailer fields RFC 9110 §6.5.1 keeps out of trailers (Set-Cookie, Authorization, Content-Type) are dropped, as over httpTransport', async () => {
  // docs/headers.md "Trailers and 103 Early Hints": "In both directions, fields that belong in the head and that
  // RFC 9110 §6.5.1 keeps out of trailers (framing, Host, Authorization, Cookie/Set-Cookie, content type ...) are dropped".
  const upstream = await h2Upstream((stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
    stream.on('wantTrailers', () =>
      stream.sendTrailers({ 'x-checksum': 'ok', 'set-cookie': 'sid=from-trailer', authorization: 'Bearer t', 'content-type': 'text/evil' }),
    );
    stream.end('body');
  });
  const relay = await relayWith({ targetBaseUrl: upstream.url, transport: http2Transport() });
  const session = await h2FrontSession(closers, relay);
  const stream = session.request({ ':method': 'GET', ':path': '/t' });
  stream.end();
  const answer = await collect(stream);
  assert.is(answer.body, 'body');
  assert.is(answer.trailers['x-checksum'], 'ok');
  for (const name of ['set-cookie', 'authorization', 'content-type']) assert.is(answer.trailers[name], undefined, `${name} crossed the relay in trailers`);
});

test('httpTransport: the same forbidden trailer fields from an HTTP/1.1 upstream are dropped before an HTTP/2 client', async () => {
  // The reference behaviour for the test above (docs/headers.md, RFC 9110 §6.5.1).
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('body');
    res.addTrailers([['x-checksum', 'ok'], ['set-cookie', 'sid=from-trailer'], ['authorization', 'Bearer t'], ['content-type', 'text/evil']]);
    res.end();
  });
  closers.push(upstream.close);
  const relay = await relayWith({ targetBaseUrl: upstream.url });
  const session = await h2FrontSession(closers, relay);
  const stream = session.request({ ':method': 'GET', ':path': '/t' });
  stream.end();
  const answer = await collect(stream);
  assert.is(answer.trailers['x-checksum'], 'ok');
  for (const name of ['set-cookie', 'authorization', 'content-type']) assert.is(answer.trailers[name], undefined, `${name} crossed the relay in trailers`);
});

test('103 Early Hints from the upstream are not sent to an HTTP/1.0 client; its final answer arrives alone', async () => {
  // RFC 9110 §15.2: "Since HTTP/1.0 did not define any 1xx status codes, a server MUST NOT send a 1xx
  // response to an HTTP/1.0 client." (Tomcat fixed the same in #1149; mod_proxy_http2 filters 1xx.)
  const upstream = await startUpstream((_req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    setTimeout(() => res.end('final'), 50);
  });
  closers.push(upstream.close);
  const relay = await relayWith({ targetBaseUrl: upstream.url });
  const server = http.createServer(relay.handle);
  const url = await listen(server);
  closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const raw = await sendRaw(Number(new URL(url).port), 'GET /page HTTP/1.0\r\nHost: example.test\r\n\r\n', 3000);
  assert.match(raw, /final$/);
  assert.not.match(raw, /^HTTP\/1\.[01] 103/, `the HTTP/1.0 client got: ${JSON.stringify(raw.slice(0, 80))}`);
  assert.match(raw, /^HTTP\/1\.[01] 200/);
});

test.run();
