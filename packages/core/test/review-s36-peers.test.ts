// Review s36 (peers): cases from the test suites of http-proxy (http-party/node-http-proxy), http-proxy-3
// (sagemathinc/http-proxy-3), http-proxy-middleware (chimurai) and @fastify/reply-from, ported to Relay's core
// where Relay promises the same behaviour (packages/core/README.md "Behaviour", docs/headers.md, docs/path-mapping.md,
// docs/error-handling.md). Each test names the behaviour Relay should have; a comment cites the peer test.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, fetchRaw, listen, listenHttp2, sendRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { createRelay, type RelayOptions } from '../src/index.js';

async function relayTo(url: string, options: Omit<RelayOptions, 'targetBaseUrl'> = {}) {
  return serveRelay(createRelay({ targetBaseUrl: url, timeout: { connect: 2000, read: 3000, write: 3000 }, ...options }));
}

// http-proxy web-incoming-test "#XHeaders set the correct x-forwarded-* headers"; http-proxy-3 the same.
test('the upstream gets X-Forwarded-For (client address), -Proto http, -Port (the port the client connected to) and -Host (the client Host)', async () => {
  const upstream = await startUpstream();
  const gw = await relayTo(upstream.url);
  try {
    const response = await fetchRaw(`${gw.url}/x`, { headers: { host: `gw.example:${gw.port}` } });
    assert.is(response.status, 200);
    const seen = upstream.requests[0]!.headers;
    assert.is(seen['x-forwarded-for'], '127.0.0.1');
    assert.is(seen['x-forwarded-proto'], 'http');
    assert.is(seen['x-forwarded-port'], String(gw.port));
    assert.is(seen['x-forwarded-host'], `gw.example:${gw.port}`);
    // changeOrigin (http-proxy "should proxy the request and handle changeOrigin option"): the upstream's own host:port.
    assert.is(seen.host, `127.0.0.1:${upstream.port}`);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy-3 "#createProxyServer with xfwd option: should not throw on empty http host header" (GET / HTTP/1.0, no Host).
test('an HTTP/1.0 request without Host is relayed: the upstream gets its own Host and no empty X-Forwarded-Host', async () => {
  const upstream = await startUpstream();
  const gw = await relayTo(upstream.url);
  try {
    const text = await sendRaw(gw.port, 'GET /plain HTTP/1.0\r\n\r\n', 3000);
    assert.match(text, /^HTTP\/1\.[01] 200/);
    const seen = upstream.requests[0]!;
    assert.is(seen.url, '/plain');
    assert.is(seen.headers.host, `127.0.0.1:${upstream.port}`);
    assert.is(seen.headers['x-forwarded-host'], undefined);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy-3 common test "should not modify the query string" and "should properly join paths".
test('the target path and the request path are joined, and the query (with //, ?, %26 and a URL in it) is sent byte for byte', async () => {
  const upstream = await startUpstream();
  const gw = await relayTo(`${upstream.url}/forward`);
  try {
    await fetchRaw(`${gw.url}/static/path`);
    await fetchRaw(`${gw.url}/?foo=bar//&target=http://foobar.com/?a=1%26b=2&other=2`);
    assert.equal(
      upstream.requests.map((seen) => seen.url),
      ['/forward/static/path', '/forward/?foo=bar//&target=http://foobar.com/?a=1%26b=2&other=2'],
    );
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// reply-from full-querystring-url.test.js: `/hi?a=/ho/%2E%2E/hi` reaches the upstream as sent (a query is not a path);
// http-proxy-middleware "should have proxied the uri-path and uri-query": `?q=1&r=[2,3]`.
test('dot segments, encoded slashes and brackets in the query are not path traversal: relayed as sent', async () => {
  const upstream = await startUpstream();
  const gw = await relayTo(upstream.url, { mountPath: '/api' });
  try {
    const first = await fetchRaw(`${gw.url}/api/hi?a=/ho/%2E%2E/hi`);
    const second = await fetchRaw(`${gw.url}/api/b/c/dp?q=1&r=[2,3]`);
    const third = await fetchRaw(`${gw.url}/api/login?next=//evil.example/../x%2f..`);
    assert.equal([first.status, second.status, third.status], [200, 200, 200]);
    assert.equal(
      upstream.requests.map((seen) => seen.url),
      ['/hi?a=/ho/%2E%2E/hi', '/b/c/dp?q=1&r=[2,3]', '/login?next=//evil.example/../x%2f..'],
    );
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy-3 double-slashes.test.ts: `/test//foo` reaches the upstream as `/test//foo` (only a leading `//` is refused by Relay, documented).
test('an empty segment inside the path is kept: /test//foo reaches the upstream as /test//foo', async () => {
  const upstream = await startUpstream();
  const gw = await relayTo(upstream.url);
  try {
    const response = await fetchRaw(`${gw.url}/test//foo`);
    assert.is(response.status, 200);
    assert.is(upstream.requests[0]!.url, '/test//foo');
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy-middleware http-query.spec.ts: the QUERY method, its body and the upstream's statuses pass through.
test('methods pass through unchanged: QUERY with a body, PATCH, PROPFIND, and the upstream 405 with Allow', async () => {
  const upstream = await startUpstream((req, res, seen) => {
    if (req.method === 'PROPFIND') {
      res.writeHead(405, { allow: 'GET, OPTIONS, HEAD' });
      res.end('method-not-allowed');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${req.method} ${seen.body.toString()}`);
  });
  const gw = await relayTo(upstream.url);
  try {
    const query = await fetchRaw(`${gw.url}/search?q=a`, { method: 'QUERY', headers: { 'content-type': 'application/json' }, body: '{"term":"x"}' });
    assert.is(query.text, 'QUERY {"term":"x"}');
    const patch = await fetchRaw(`${gw.url}/item`, { method: 'PATCH', body: 'p' });
    assert.is(patch.text, 'PATCH p');
    const propfind = await fetchRaw(`${gw.url}/dav`, { method: 'PROPFIND' });
    assert.is(propfind.status, 405);
    assert.is(propfind.headers.allow, 'GET, OPTIONS, HEAD');
    assert.is(propfind.text, 'method-not-allowed');
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy web-incoming-test "#deleteLength": a DELETE or OPTIONS without a body must not go upstream as a chunked body.
test('a DELETE and an OPTIONS without a body reach the upstream without Transfer-Encoding and with no body', async () => {
  const upstream = await startUpstream();
  const gw = await relayTo(upstream.url);
  try {
    await fetchRaw(`${gw.url}/d`, { method: 'DELETE' });
    await fetchRaw(`${gw.url}/o`, { method: 'OPTIONS' });
    for (const seen of upstream.requests) {
      assert.is(seen.headers['transfer-encoding'], undefined, `${seen.method} went chunked`);
      assert.is(seen.body.length, 0);
    }
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// reply-from get-with-body.test.js / head-with-body.test.js: a GET with a body keeps it; a HEAD's answer has headers and no body.
test('a GET with a body sends it upstream with its Content-Length; a HEAD answer keeps its headers and carries no body', async () => {
  const upstream = await startUpstream((req, res, seen) => {
    res.statusCode = 205;
    res.setHeader('content-type', 'text/plain');
    res.setHeader('x-my-header', 'hello!');
    res.setHeader('content-length', '11');
    if (req.method === 'HEAD') res.end();
    else res.end(seen.body.length > 0 ? seen.body : 'hello world');
  });
  const gw = await relayTo(upstream.url);
  try {
    const get = await fetchRaw(`${gw.url}/`, { method: 'GET', headers: { 'content-type': 'text/plain', 'content-length': '16' }, body: 'this is get body' });
    assert.is(upstream.requests[0]!.headers['content-length'], '16');
    assert.is(upstream.requests[0]!.body.toString(), 'this is get body');
    assert.is(get.status, 205);
    const head = await fetchRaw(`${gw.url}/`, { method: 'HEAD' });
    assert.is(head.status, 205);
    assert.is(head.headers['x-my-header'], 'hello!');
    assert.is(head.headers['content-length'], '11');
    assert.is(head.body.length, 0);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy-3 set-cookie.test.ts ("preserves two/three Set-Cookie headers", "a single one without regressing to an empty value").
test('one, two and three Set-Cookie lines reach the client as separate lines, in order', async () => {
  const cookies = ['a=1; Path=/', 'b=2; Path=/', 'c=3; Path=/'];
  const upstream = await startUpstream((req, res) => {
    const count = Number(new URL(req.url!, 'http://x').searchParams.get('n'));
    if (count > 0) res.setHeader('set-cookie', cookies.slice(0, count));
    res.end('ok');
  });
  const gw = await relayTo(upstream.url);
  try {
    for (const count of [0, 1, 2, 3]) {
      const response = await fetchRaw(`${gw.url}/?n=${count}`);
      assert.equal(response.headers['set-cookie'] ?? [], cookies.slice(0, count));
    }
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy lib-http-proxy-test "should make the request, handle response and finish it" (rawHeaders keep the
// upstream's Content-Type); Relay writes lowercase names, which HTTP says are case-insensitive: only the values and order are checked.
test('the upstream response headers reach the client in the upstream order with the custom reason phrase', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(299, 'Custom Reason', [
      ['X-First', '1'],
      ['Content-Type', 'text/plain'],
      ['X-Dup', 'a'],
      ['X-Last', 'z'],
      ['X-Dup', 'b'],
    ]);
    res.end('Hello');
  });
  const gw = await relayTo(upstream.url);
  try {
    const response = await fetchRaw(`${gw.url}/`);
    assert.is(response.status, 299);
    assert.is(response.statusMessage, 'Custom Reason');
    const names = response.rawHeaders.filter((_, index) => index % 2 === 0).map((name) => name.toLowerCase());
    const own = names.filter((name) => name.startsWith('x-') || name === 'content-type');
    assert.equal(own.slice(0, 3), ['x-first', 'content-type', 'x-dup']);
    assert.is(response.headers['x-dup'], 'a, b');
    assert.is(response.text, 'Hello');
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy "should proxy the request and handle error via callback" (ECONNREFUSED): Relay answers 502 (docs/error-handling.md).
test('a refused upstream connection answers 502 ERR_UPSTREAM_UNREACHABLE', async () => {
  const port = await closedPort();
  const gw = await relayTo(`http://127.0.0.1:${port}`);
  try {
    const response = await fetchRaw(`${gw.url}/`);
    assert.is(response.status, 502);
    assert.match(response.text, /ERR_UPSTREAM_UNREACHABLE/);
    assert.not.match(response.text, new RegExp(String(port)));
  } finally {
    await gw.close();
  }
});

// http-proxy "should proxy the request and handle timeout error (proxyTimeout)": a TCP server that never answers → 504.
test('an upstream that accepts and never answers gets 504 ERR_READ_TIMEOUT after the read timeout', async () => {
  const sockets: Socket[] = [];
  const silent = createTcpServer((socket) => sockets.push(socket));
  const url = await listen(silent);
  const gw = await serveRelay(createRelay({ targetBaseUrl: url, timeout: { read: 300 } }));
  try {
    const started = Date.now();
    const response = await fetchRaw(`${gw.url}/`);
    assert.is(response.status, 504);
    assert.match(response.text, /ERR_READ_TIMEOUT/);
    assert.ok(Date.now() - started < 5000);
  } finally {
    await gw.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

// http-proxy-middleware "should handle ECONNRESET errors" / "closed connections from the target server": Relay documents 502 ERR_UPSTREAM_RESET.
test('an upstream that resets or closes before the head answers 502 ERR_UPSTREAM_RESET', async () => {
  let mode: 'reset' | 'close' = 'reset';
  const raw = createTcpServer((socket) => {
    socket.once('data', () => {
      if (mode === 'reset') socket.resetAndDestroy();
      else socket.end();
    });
  });
  const url = await listen(raw);
  const gw = await relayTo(url);
  try {
    const reset = await fetchRaw(`${gw.url}/`);
    mode = 'close';
    const closed = await fetchRaw(`${gw.url}/`);
    assert.equal([reset.status, closed.status], [502, 502]);
    assert.match(reset.text, /ERR_UPSTREAM_RESET/);
    assert.match(closed.text, /ERR_UPSTREAM_RESET/);
  } finally {
    await gw.close();
    await new Promise<void>((resolve) => raw.close(() => resolve()));
  }
});

// reply-from http1-aborted-request.test.js: a client that aborts before the upstream answered: the upstream request is aborted too.
test('a client that leaves before the answer aborts the upstream request at once', async () => {
  let upstreamClosed = false;
  const upstream = await startUpstream((req, res) => {
    req.socket.on('close', () => (upstreamClosed = true));
    setTimeout(() => {
      if (!res.destroyed) res.end('late');
    }, 1500);
  });
  const gw = await relayTo(upstream.url);
  try {
    const req = httpRequest(`${gw.url}/slow`, { agent: false });
    req.on('error', () => {});
    req.end();
    await waitFor(() => upstream.requests.length === 1, 2000);
    req.destroy();
    assert.ok(await waitFor(() => upstreamClosed, 1000), 'the upstream connection stayed open after the client left');
    assert.ok(await waitFor(() => gw.relay.inFlight === 0, 1000));
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// http-proxy-middleware sse.spec.ts: server-sent events reach the client as they are sent.
test('server-sent events reach the client one by one, before the stream ends', async () => {
  const upstream = await startUpstream(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      const timer = setInterval(() => res.write('data: tick\n\n'), 100);
      res.on('close', () => clearInterval(timer));
    },
    { streaming: true },
  );
  const gw = await relayTo(upstream.url);
  try {
    const received = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/sse`, { agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if ((text.match(/data:/g) ?? []).length >= 3) {
            req.destroy();
            resolve(text);
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
    assert.match(received, /^data: 1\n\ndata: tick\n\ndata: tick/);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// HTTP/2 front to an HTTP/1.1 upstream: RFC 9113 §8.2.3 (the peers' http2 tests, http-proxy-3 proxy-http2-to-http.test.ts).
test('an HTTP/2 client\'s split cookie fields reach an HTTP/1.1 upstream as one Cookie line joined with "; "', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const server = http2.createServer(relay.handle);
  const front = await listenHttp2(server);
  const session = http2.connect(front.url);
  try {
    await new Promise<void>((resolve, reject) => {
      // Browsers send each cookie as its own field for HPACK (RFC 9113 §8.2.3).
      const stream = session.request({ ':path': '/c', cookie: ['a=1', 'b=2'] });
      stream.on('response', () => {});
      stream.resume();
      stream.on('end', () => resolve());
      stream.on('error', reject);
      stream.end();
    });
    const seen = upstream.requests[0]!;
    const cookieLines = seen.rawHeaders.filter((_, index) => index % 2 === 0 && seen.rawHeaders[index]!.toLowerCase() === 'cookie');
    assert.is(cookieLines.length, 1, `the HTTP/1.1 upstream got ${cookieLines.length} Cookie lines (RFC 6265 §5.4 allows one)`);
    assert.is(seen.headers.cookie, 'a=1; b=2');
  } finally {
    session.close();
    await front.close();
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

// reply-from / http-proxy "keep-alive": sequential requests reuse one upstream connection.
test('sequential requests reuse one keep-alive upstream connection', async () => {
  const upstream = await startUpstream();
  const connections = new Set<unknown>();
  upstream.server.on('connection', (socket) => connections.add(socket));
  const gw = await relayTo(upstream.url);
  try {
    for (let index = 0; index < 5; index++) {
      const response = await fetchRaw(`${gw.url}/k${index}`);
      assert.is(response.status, 200);
    }
    assert.is(connections.size, 1);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// Big bodies both ways (http-proxy-3 basic-proxy / reply-from full-post-stream): 8 MiB up and down, bytes intact.
test('an 8 MiB upload and an 8 MiB download pass intact', async () => {
  const size = 8 * 1024 * 1024;
  const payload = Buffer.alloc(size, 'x');
  payload.write('END', size - 3);
  const upstream = await startUpstream((req, res, seen) => {
    if (req.method === 'POST') {
      res.end(String(seen.body.length) + seen.body.subarray(-3).toString());
      return;
    }
    res.writeHead(200, { 'content-length': String(size) });
    res.end(payload);
  });
  const gw = await relayTo(upstream.url);
  try {
    const up = await fetchRaw(`${gw.url}/up`, { method: 'POST', body: payload });
    assert.is(up.text, `${size}END`);
    const down = await fetchRaw(`${gw.url}/down`);
    assert.is(down.body.length, size);
    assert.ok(down.complete);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// 304 and 1xx: http-proxy-3 passes 304 with its validators and no body; a 103 reaches the client first (docs/headers.md).
test('a 304 keeps its ETag and has no body; a 103 Early Hints reaches the client before the final answer', async () => {
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/cached') {
      res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' });
      res.end();
      return;
    }
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    setTimeout(() => res.end('final'), 50);
  });
  const gw = await relayTo(upstream.url);
  try {
    const cached = await fetchRaw(`${gw.url}/cached`, { headers: { 'if-none-match': '"v1"' } });
    assert.is(cached.status, 304);
    assert.is(cached.headers.etag, '"v1"');
    assert.is(cached.body.length, 0);
    assert.is(upstream.requests[0]!.headers['if-none-match'], '"v1"');
    const hints: string[] = [];
    const final = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/hinted`, { agent: false }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('information', (info: { statusCode: number; headers: IncomingMessage['headers'] }) => hints.push(`${info.statusCode} ${String(info.headers.link)}`));
      req.on('error', reject);
      req.end();
    });
    assert.is(final, 'final');
    assert.equal(hints, ['103 </style.css>; rel=preload; as=style']);
  } finally {
    await gw.close();
    await upstream.close();
  }
});

// The HTTP front passes reason phrases (conformance: "status codes and reason phrases pass through"); a Web
// `Response` carries one too (`statusText`, Fetch standard §6.4). http-proxy-3's fetch path and undici's own
// `fetch` hand the upstream's reason phrase to the caller.
test('relay.fetch: the upstream reason phrase reaches the Web Response as statusText, as it reaches an HTTP client', async () => {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(299, 'My Reason', { 'x-a': '1' });
    res.end('r');
  });
  const relay = createRelay({ targetBaseUrl: upstream.url });
  try {
    const response = await relay.fetch(new Request('http://gw.example/reason'), { address: '203.0.113.7' });
    assert.is(response.status, 299);
    assert.is(await response.text(), 'r');
    assert.is(response.statusText, 'My Reason');
  } finally {
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test.run();
