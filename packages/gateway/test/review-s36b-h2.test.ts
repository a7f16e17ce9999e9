// Review s36b (gateway, issue 19), black box: a TLS listener serving HTTP/2 (ALPN h2) beside
// HTTP/1.1, driven in-process through `serve()` (the bin's own listeners, secure-listener.ts) with
// real clients: node:http2, raw HTTP/2 frames for what node's client will not send (a request
// without `:authority`), curl --http2 / --http1.1. Reviewed: routing by `:authority` and Host,
// request/response bodies, trailers and flow control, a client's RST_STREAM mid-upload and
// mid-download, many streams on one connection, a long request on a slow upstream across the 5 s
// session-inactivity GOAWAY, the endpoints (and HEAD on them) over HTTP/2, HEAD on a GET-only
// route, a certificate reload still offering h2, and curl on both protocols.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { connect as http2Connect, constants, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, startUpstream, tlsFixture, tlsRenewedFixture, waitFor, writeChunks, type Upstream } from '@relay/testkit';
import { serve, type RunningGateway } from '../src/index.js';
import { configDir } from './bin.js';

const files = configDir();
let api: Upstream;
let running: RunningGateway;
let port = 0;
/** What the upstream saw of each request's end: `complete` (whole body), `aborted`, and how many bytes. */
const endings = new Map<string, { complete: boolean; aborted: boolean; bytes: number; trailers: Record<string, string> }>();
/** Response bodies the upstream wrote whose client went away before the end. */
const cutDownloads = new Set<string>();
let inUpstream = 0;
let mostInUpstream = 0;

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '';
  if (url.startsWith('/api/upload')) {
    let bytes = 0;
    let aborted = false;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('aborted', () => (aborted = true));
    req.on('end', () => res.writeHead(200, { trailer: 'x-upstream-sum' }).end(String(bytes)));
    res.on('close', () => endings.set(url, { complete: req.complete, aborted, bytes, trailers: { ...(req.trailers as Record<string, string>) } }));
    req.on('close', () => endings.set(url, { complete: req.complete, aborted, bytes, trailers: { ...(req.trailers as Record<string, string>) } }));
    return;
  }
  if (url.startsWith('/api/download')) {
    // 16 MiB written with backpressure, then a trailer.
    res.writeHead(200, { 'content-type': 'application/octet-stream', trailer: 'x-sum' });
    const chunk = Buffer.alloc(64 * 1024, 'd');
    let left = url.includes('endless') ? Number.POSITIVE_INFINITY : 256;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.addTrailers({ 'x-sum': 'sixteen' });
      res.end();
    };
    res.on('close', () => {
      if (!res.writableFinished) cutDownloads.add(url);
    });
    pump();
    return;
  }
  req.resume();
  if (url.startsWith('/api/hold')) {
    inUpstream++;
    mostInUpstream = Math.max(mostInUpstream, inUpstream);
    setTimeout(() => {
      inUpstream--;
      res.end('held');
    }, 200);
    return;
  }
  if (url.startsWith('/api/slow')) {
    // A long request on a slow upstream: nothing moves on the client's connection for 7 s.
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('slow and whole'), 7_000);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url, method: req.method, host: req.headers.host }));
}

test.before(async () => {
  api = await startUpstream(upstreamHandler, { streaming: true });
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  const config = files.write(
    'gateway.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }',
      'status: { path: /_relay/status }',
      'routes:',
      '  - name: a-host',
      '    match: { path: /who, host: a.example }',
      `    upstream: ${api.url}/a`,
      '  - name: any-host',
      '    match: { path: /who }',
      `    upstream: ${api.url}/any`,
      '  - name: read-only',
      '    match: { path: /ro, methods: [GET] }',
      `    upstream: ${api.url}/ro`,
      '  - name: api',
      '    match: { path: /api }',
      `    upstream: ${api.url}`,
      '    stripPrefix: false',
      '',
    ].join('\n'),
  );
  running = await serve({ config, logger: memoryLogger() as never, watch: false });
  port = (running.servers[0]!.address() as { port: number }).port;
});

test.after(async () => {
  await running?.stop();
  await api.close();
  files.cleanup();
});

function h2Session(): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`https://localhost:${port}`, { ca: tlsFixture.cert });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

interface H2Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  trailers: Record<string, string | string[] | undefined>;
}

/** One request; `send` writes the body (default: none), the answer is bounded at 30 s. */
function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, send: (stream: ReturnType<ClientHttp2Session['request']>) => void = (s) => s.end()): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { waitForTrailers: headers[':method'] === 'POST' });
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error(`no answer to ${String(headers[':path'])} within 30 s`));
    }, 30_000);
    let answer: Omit<H2Answer, 'body' | 'trailers'> = { status: 0, headers: {} };
    let trailers: H2Answer['trailers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (head) => (answer = { status: Number(head[':status']), headers: head }));
    stream.on('trailers', (fields) => (trailers = fields));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve({ ...answer, body: Buffer.concat(chunks), trailers });
    });
    stream.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    send(stream);
  });
}

// ---- raw HTTP/2 frames: node's client always sends `:authority`; a request may carry Host instead.

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK literal field without indexing, new name, no Huffman (RFC 7541 §6.2.2). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/** `:method GET`, `:scheme https` (static table 2 and 7) and `:path` (indexed name 4). */
function getHead(path: string): Buffer {
  return Buffer.concat([Buffer.from([0x82, 0x87, 0x04, path.length]), Buffer.from(path)]);
}

/** The status of a one-request HTTP/2 exchange over a raw TLS socket: the first HPACK byte of the answer (indexed :status). */
function rawH2Status(block: Buffer): Promise<number | string> {
  const indexedStatus: Record<number, number> = { 0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500 };
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca: tlsFixture.cert, ALPNProtocols: ['h2'] }, () => {
      socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, block)]));
    });
    let pending = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 5 s'));
    }, 5_000);
    const done = (result: number | string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const [type, flags] = [pending[3]!, pending[4]!];
        const stream = pending.readUInt32BE(5) & 0x7fffffff;
        const payload = pending.subarray(9, 9 + length);
        pending = pending.subarray(9 + length);
        if (type === 4 && (flags & 1) === 0) socket.write(frame(4, 1, 0, Buffer.alloc(0)));
        if (type === 1 && stream === 1) return done(indexedStatus[payload[0]!] ?? `status byte 0x${payload[0]!.toString(16)}`);
        if (type === 3 && stream === 1) return done(`RST_STREAM ${payload.readUInt32BE(0)}`);
      }
    });
    socket.on('error', reject);
  });
}

function curl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '20', '--cacert', files.dir + '/cert.pem', ...args], (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

test('routing over HTTP/2: :authority picks the host route; without :authority the Host header does; a Host contradicting :authority is refused (400), never routed (RFC 9113 §8.3.1)', async () => {
  const session = await h2Session();
  try {
    const byAuthority = await h2Request(session, { ':path': '/who/x', ':authority': 'A.Example:8443' });
    assert.is(JSON.parse(byAuthority.body.toString()).url, '/a/x');
    const other = await h2Request(session, { ':path': '/who/x' });
    assert.is(JSON.parse(other.body.toString()).url, '/any/x');
  } finally {
    session.close();
  }
  // RFC 9113 §8.3.1: a request without :authority names its host in Host.
  const before = api.requests.length;
  assert.is(await rawH2Status(Buffer.concat([getHead('/who/raw'), literal('host', 'a.example')])), 200);
  assert.is(api.requests.at(-1)?.url, '/a/raw');
  // "A server SHOULD treat a request as malformed if it contains a Host header field that identifies an entity that
  // differs from the entity in the :authority pseudo-header field": neither host may route it.
  const seen = api.requests.length;
  assert.is(await rawH2Status(Buffer.concat([getHead('/who/raw'), literal(':authority', 'b.example'), literal('host', 'a.example')])), 400);
  assert.is(await rawH2Status(Buffer.concat([getHead('/who/raw'), literal(':authority', 'a.example'), literal('host', 'b.example')])), 400);
  assert.is(api.requests.length, seen, 'a malformed request reached no upstream');
  assert.is(seen, before + 1);
});

test('HTTP/2 bodies: a 16 MiB upload with trailer fields reaches the upstream whole, a 16 MiB download and its trailers reach the client (flow control both ways)', async () => {
  const session = await h2Session();
  try {
    const upload = await h2Request(session, { ':method': 'POST', ':path': '/api/upload/big' }, (stream) => {
      stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
      writeChunks(stream, { chunk: Buffer.alloc(64 * 1024, 'u'), count: 256 });
    });
    assert.is(upload.status, 200);
    assert.is(upload.body.toString(), String(16 * 1024 * 1024));
    assert.ok(await waitFor(() => endings.has('/api/upload/big'), 5_000));
    const seen = endings.get('/api/upload/big')!;
    assert.equal([seen.complete, seen.bytes, seen.trailers['x-checksum']], [true, 16 * 1024 * 1024, 'abc']);
    const download = await h2Request(session, { ':path': '/api/download/big' });
    assert.is(download.status, 200);
    assert.is(download.body.length, 16 * 1024 * 1024);
    assert.is(download.trailers['x-sum'], 'sixteen');
  } finally {
    session.close();
  }
});

test('an HTTP/2 client that resets its stream mid-download: the upstream response is cut too (its connection closed, not drained to the end)', async () => {
  const session = await h2Session();
  try {
    const stream = session.request({ ':path': '/api/download/endless' });
    stream.on('error', () => {});
    let received = 0;
    stream.on('data', (chunk: Buffer) => (received += chunk.length));
    assert.ok(await waitFor(() => received > 1024 * 1024, 10_000), 'the download is under way');
    stream.close(constants.NGHTTP2_CANCEL);
    assert.ok(await waitFor(() => cutDownloads.has('/api/download/endless'), 5_000), 'the upstream response was closed before its end');
  } finally {
    session.close();
  }
});

test('300 requests at once on one HTTP/2 connection: all answered 200, at most 128 at the upstream at once (maxConcurrentStreams, docs/gateway.md)', async () => {
  const session = await h2Session();
  try {
    mostInUpstream = 0;
    const answers = await Promise.all(Array.from({ length: 300 }, (_, index) => h2Request(session, { ':path': `/api/hold/${index}` })));
    assert.equal([...new Set(answers.map((answer) => answer.status))], [200]);
    assert.ok(mostInUpstream <= 128 && mostInUpstream >= 64, `${mostInUpstream} at the upstream at once`);
  } finally {
    session.close();
  }
});

test('a long request on a slow upstream (7 s, nothing on the connection) is not cut by the 5 s session-inactivity GOAWAY: the answer arrives whole', async () => {
  const session = await h2Session();
  let goAway = false;
  session.on('goaway', () => (goAway = true));
  try {
    const started = Date.now();
    const answer = await h2Request(session, { ':path': '/api/slow' });
    assert.equal([answer.status, answer.body.toString()], [200, 'slow and whole']);
    assert.ok(Date.now() - started >= 6_000, 'the upstream took its time');
    // A session with a stream open is not idle (nginx's keepalive_timeout counts only with none open): no GOAWAY.
    assert.not.ok(goAway, 'the session got a GOAWAY while its request was open');
  } finally {
    session.destroy();
  }
});

test('over HTTP/2: /healthz, /metrics, the status page and its JSON answer GET, and HEAD with the same head and no body', async () => {
  const session = await h2Session();
  try {
    for (const path of ['/healthz', '/metrics', '/_relay/status', '/_relay/status.json']) {
      const get = await h2Request(session, { ':path': path });
      assert.is(get.status, 200, path);
      assert.ok(get.body.length > 0, path);
      const head = await h2Request(session, { ':path': path, ':method': 'HEAD' });
      assert.is(head.status, 200, `HEAD ${path}`);
      assert.is(head.body.length, 0, `HEAD ${path} has no body`);
      assert.is(head.headers['content-type'], get.headers['content-type'], `HEAD ${path}`);
    }
    const status = JSON.parse((await h2Request(session, { ':path': '/_relay/status.json' })).body.toString()) as { routes: Array<{ name: string }> };
    assert.equal(
      status.routes.map((route) => route.name),
      ['a-host', 'any-host', 'read-only', 'api'],
    );
  } finally {
    session.close();
  }
});

test('HEAD on a GET-only route: 405 with Allow: GET and no body, as any other method the route does not list (docs/gateway.md: "other methods fall through to other routes, or get 405")', async () => {
  // The docs define `methods` as an exact list; nginx's `limit_except GET` would also take HEAD,
  // Caddy's and Traefik's method matchers do not. Regression coverage of what the docs say.
  const session = await h2Session();
  try {
    const head = await h2Request(session, { ':path': '/ro/x', ':method': 'HEAD' });
    assert.equal([head.status, head.headers.allow, head.body.length], [405, 'GET', 0]);
    const get = await h2Request(session, { ':path': '/ro/x' });
    assert.is(JSON.parse(get.body.toString()).url, '/ro/x');
  } finally {
    session.close();
  }
});

test('curl --http2 and --http1.1 on the TLS port: each gets its protocol, the same route and answer', async () => {
  const h2 = await curl(['--http2', '-o', '-', '-w', '\n%{http_version}', `https://localhost:${port}/who/curl`]);
  const [h2Body, h2Version] = h2.stdout.split('\n');
  assert.is(h2Version, '2');
  assert.is(JSON.parse(h2Body!).url, '/any/curl');
  const h1 = await curl(['--http1.1', '-o', '-', '-w', '\n%{http_version}', `https://localhost:${port}/who/curl`]);
  const [h1Body, h1Version] = h1.stdout.split('\n');
  assert.is(h1Version, '1.1');
  assert.is(JSON.parse(h1Body!).url, '/any/curl');
});

test('a certificate reload (same files, renewed certificate): new connections get the new certificate and still negotiate h2', async () => {
  files.write('cert.pem', tlsRenewedFixture.cert.toString());
  files.write('key.pem', tlsRenewedFixture.key.toString());
  try {
    assert.ok(await running.reload(), 'the reload was accepted');
    const session = await new Promise<ClientHttp2Session>((resolve, reject) => {
      const client = http2Connect(`https://localhost:${port}`, { ca: tlsRenewedFixture.cert });
      client.once('connect', () => resolve(client));
      client.once('error', reject);
    });
    try {
      assert.is(session.alpnProtocol, 'h2');
      const served = (session.socket as TLSSocket).getPeerX509Certificate() as X509Certificate;
      assert.is(served.fingerprint256, new X509Certificate(tlsRenewedFixture.cert).fingerprint256);
      const answer = await h2Request(session, { ':path': '/who/renewed' });
      assert.is(JSON.parse(answer.body.toString()).url, '/any/renewed');
    } finally {
      session.close();
    }
  } finally {
    files.write('cert.pem', tlsFixture.cert.toString());
    files.write('key.pem', tlsFixture.key.toString());
    await running.reload();
  }
});

test.run();
