// Review s37 (issue 13, the attack run), black box: createRelay behind node:http (the recommended
// gatewayServerOptions), driven by raw sockets so each hostile byte reaches the relay as written,
// against a raw `net` upstream that can misbehave byte for byte. Reviewed what hostile.test,
// review-hostile, review-crash, hardening-* and faults did not: request smuggling variants node's
// parser must refuse (obs-fold, `chunked, identity`, duplicate and list Content-Length, chunk-size
// overflow, chunk-extension floods, bare LF / CR, NUL and CTL bytes), an HTTP/1.0 request with
// Transfer-Encoding, the connection after the relay's own refusal of a request whose body is
// still coming, hop-by-hop and Connection-listed fields both ways, broken upstreams (CL with
// TE, obs-fold, NUL, bare LF, chunk overflow, a 1xx flood, a head or a 1xx stream that never ends,
// a body longer than its Content-Length poisoning the pooled connection, an unsolicited 100) on the
// http, got and undici transports, and an HTTP/2 client that opens a zero flow-control window.
// Each case checks: no hang, a short 4xx/5xx, no internal address, in-flight and fds back.
import { readdirSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect as http2Connect, createServer as createHttp2Server } from 'node:http2';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, memoryLogger, sendRaw, startUpstream, waitFor, type ClientResponse, type MemoryLogger } from '@relay/testkit';
import { createRelay, gatewayServerOptions, httpTransport, type Relay, type Transport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';

type Responder = (socket: Socket, index: number) => void;

interface RawUpstream {
  url: string;
  port: number;
  /** Every byte received, in arrival order. */
  received: string;
  /** Requests read so far (one per blank line). */
  count: number;
  respond: Responder;
  readonly open: number;
  /** Writes `bytes` on `socket` every `everyMs` until `reset()` or the socket closes. */
  trickle(socket: Socket, bytes: string, everyMs: number): void;
  /** Stops every trickle timer and destroys every connection. */
  reset(): void;
  close(): Promise<void>;
}

const answerOk: Responder = (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');

async function startRawUpstream(): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      state.received += chunk.toString('latin1');
      pending += chunk.toString('latin1');
      let end: number;
      while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
        pending = pending.slice(end + 4);
        state.respond(socket, state.count++);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const state: RawUpstream = {
    url: `http://127.0.0.1:${port}`,
    port,
    received: '',
    count: 0,
    respond: answerOk,
    get open() {
      return sockets.size;
    },
    trickle(socket, bytes, everyMs) {
      const timer = setInterval(() => {
        if (socket.destroyed) clearInterval(timer);
        else socket.write(bytes);
      }, everyMs);
      timers.add(timer);
    },
    reset() {
      for (const timer of timers) clearInterval(timer);
      timers.clear();
      for (const socket of sockets) socket.destroy();
      state.respond = answerOk;
      state.received = '';
      state.count = 0;
    },
    close() {
      state.reset();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return state;
}

interface Front {
  relay: Relay;
  server: HttpServer;
  port: number;
  url: string;
  logger: MemoryLogger;
  close(): Promise<void>;
}

async function startFront(target: string, options: Record<string, unknown> = {}): Promise<Front> {
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: target, logger, ...options });
  await relay.startup();
  const server = createHttpServer({ ...gatewayServerOptions }, relay.handle);
  server.on('upgrade', relay.upgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    relay,
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    logger,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await relay.shutdown({ timeout: 500 });
    },
  };
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A fetch bounded at `ms`: 'hung' when no whole answer (or broken one) came by then. */
function fetchWithin(url: string, ms: number): Promise<ClientResponse | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    fetchRaw(url).finally(() => clearTimeout(timer)),
    new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms))),
  ]);
}

function statusLine(raw: string): string {
  return raw.split('\r\n')[0] ?? '';
}

// ---------------------------------------------------------------------------------------------
// Hostile clients

test('request smuggling variants node:http must refuse (obs-fold TE, "chunked, identity", duplicate or list CL, chunk overflow, extension flood, bare LF/CR, NUL/CTL/DEL, space before colon) get 400 and never reach the upstream; in-flight and fds back', async () => {
  // RFC 9112 §5.1 (no whitespace before the colon), §5.2 (obs-fold: 400), §6.1 (chunked must be
  // final and alone), §6.3 (a repeated or list Content-Length is an unrecoverable error), §7.1
  // (chunk-size overflow), §2.2 (bare CR): each is a smuggling primitive (PortSwigger, "HTTP
  // desync attacks"); nginx and Envoy answer 400. The cases hostile.test covers are not repeated.
  const upstream = await startRawUpstream();
  const front = await startFront(upstream.url, { timeout: { read: 2000 } });
  try {
    await sendRaw(front.port, 'GET /warm HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
    upstream.reset();
    await delay(100);
    const fds = openFds();
    const cases: Array<[string, string]> = [
      ['TE obs-fold', 'POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
      ['TE chunked, identity', 'POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
      ['TE chunked,', 'POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked,\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
      ['CL twice, same value', 'POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'],
      ['CL list', 'POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5, 5\r\n\r\nhello'],
      ['CL +5', 'POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: +5\r\n\r\nhello'],
      ['CL overflow', 'POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 99999999999999999999999\r\n\r\nhello'],
      ['chunk-size overflow', 'POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF5\r\nhello\r\n0\r\n\r\n'],
      ['chunk-extension flood', `POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5;${'a=b;'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`],
      ['chunk ext ended by bare LF', 'POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5;x\nhello\r\n0\r\n\r\n'],
      ['chunks with bare LF', 'POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n'],
      ['head with bare LF', 'GET /a HTTP/1.1\nHost: gw\nX-A: 1\n\n'],
      ['bare CR in the head', 'GET /a HTTP/1.1\r\nHost: gw\r\nX-A: 1\rX-B: 2\r\n\r\n'],
      ['NUL in a value', 'GET /a HTTP/1.1\r\nHost: gw\r\nX-A: a\x00b\r\n\r\n'],
      ['CTL in a value', 'GET /a HTTP/1.1\r\nHost: gw\r\nX-A: a\x01b\r\n\r\n'],
      ['DEL in a value', 'GET /a HTTP/1.1\r\nHost: gw\r\nX-A: a\x7fb\r\n\r\n'],
      ['space before colon', 'GET /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
      ['lower-case method', 'get /a HTTP/1.1\r\nHost: gw\r\n\r\n'],
      ['no Host in HTTP/1.1', 'GET /a HTTP/1.1\r\n\r\n'],
      ['authority-form GET', 'GET gw:80 HTTP/1.1\r\nHost: gw\r\n\r\n'],
      ['raw UTF-8 in the target', 'GET /a/\xc3\xa9 HTTP/1.1\r\nHost: gw\r\n\r\n'],
    ];
    const wrong: string[] = [];
    for (const [name, payload] of cases) {
      const answer = await sendRaw(front.port, Buffer.from(payload, 'latin1'), 3000);
      if (!/^HTTP\/1\.1 400 /.test(answer)) wrong.push(`${name}: ${JSON.stringify(statusLine(answer))}`);
      if (answer.includes('127.0.0.1')) wrong.push(`${name}: an internal address in the answer`);
    }
    assert.equal(wrong, []);
    assert.is(upstream.received, '', 'nothing reached the upstream');
    assert.ok(await waitFor(() => front.relay.inFlight === 0 && openFds() <= fds, 3000), `in flight ${front.relay.inFlight}, fds ${openFds()} (start ${fds})`);
    assert.is((await fetchRaw(`${front.url}/after`)).status, 200, 'the relay keeps serving');
  } finally {
    await front.close();
    await upstream.close();
  }
});

test('an HTTP/1.0 request with Transfer-Encoding: chunked is refused with 400 and never forwarded as an HTTP/1.1 chunked request', async () => {
  // RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
  // Transfer-Encoding header field MUST treat the message as if the framing is faulty ... and
  // close the connection after processing the message" (a 1.0 hop in front would frame it by
  // Content-Length or by close: a desync). nginx: "client sent HTTP/1.0 request with
  // "Transfer-Encoding" header" → 400 (ngx_http_process_request_header).
  const upstream = await startRawUpstream();
  const front = await startFront(upstream.url, { timeout: { read: 2000 } });
  try {
    const payload = 'POST /a HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
    const answer = await sendRaw(front.port, payload, 3000);
    assert.match(statusLine(answer), /^HTTP\/1\.1 400 /, `got ${JSON.stringify(statusLine(answer))}`);
    assert.is(upstream.received, '', `forwarded: ${JSON.stringify(upstream.received.split('\r\n')[0])}`);
  } finally {
    await front.close();
    await upstream.close();
  }
});

test('hop-by-hop fields both ways: "Connection: close, x-secret", Keep-Alive, TE, Proxy-Authorization, Proxy-Connection, HTTP2-Settings never reach the upstream; the upstream\'s Connection-listed and hop-by-hop fields never reach the client', async () => {
  // RFC 9110 §7.6.1: a proxy removes Connection and every field it names, and the hop-by-hop
  // fields (Keep-Alive, TE, Proxy-Connection, Upgrade...), in both directions; nginx and Envoy do.
  const upstream = await startRawUpstream();
  upstream.respond = (socket) =>
    socket.write(
      'HTTP/1.1 200 OK\r\nConnection: keep-alive, x-internal-hop\r\nX-Internal-Hop: upstream-secret\r\nKeep-Alive: timeout=99\r\n' +
        'Proxy-Connection: keep-alive\r\nProxy-Authenticate: Basic realm="inner"\r\nX-End: kept\r\nContent-Length: 2\r\n\r\nok',
    );
  const front = await startFront(upstream.url, { timeout: { read: 2000 } });
  try {
    const request =
      'GET /a HTTP/1.1\r\nHost: gw\r\nConnection: close, x-secret, X-Other\r\nX-Secret: client-secret\r\nx-other: 1\r\nKeep-Alive: timeout=5\r\n' +
      'TE: gzip\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\nHTTP2-Settings: AAMAAABk\r\nX-Keep: yes\r\n\r\n';
    const answer = await sendRaw(front.port, request, 3000);
    const seen = upstream.received.toLowerCase();
    for (const name of ['x-secret', 'x-other', 'keep-alive: timeout', 'te:', 'proxy-authorization', 'proxy-connection', 'http2-settings']) {
      assert.not.ok(seen.includes(name), `${name} reached the upstream`);
    }
    assert.ok(seen.includes('x-keep: yes'), 'an end-to-end field is kept');
    const head = answer.split('\r\n\r\n')[0]!.toLowerCase();
    assert.match(head, /^http\/1\.1 200 /);
    for (const name of ['x-internal-hop', 'keep-alive: timeout=99', 'proxy-connection', 'proxy-authenticate']) {
      assert.not.ok(head.includes(name), `${name} reached the client`);
    }
    assert.ok(head.includes('x-end: kept'));
  } finally {
    await front.close();
    await upstream.close();
  }
});

test('a request the relay refuses itself (400 bad path, 400 bad Host, 501 transfer coding) while its body is still coming is answered with Connection: close and the connection is closed, as after an early upstream answer', async () => {
  // Issue 13 item 16: an answer before the upload ended gets "Connection: close and close after the
  // response, as nginx and reply-from do"; the relay does so for an upstream's early answer and,
  // over HTTP/2, closes the refused stream (http2-front-edges). nginx sets keepalive = 0 on its own
  // 400 and 501 (ngx_http_special_response_handler). Kept alive, node:http must read and drop the
  // rest of a body the relay already refused (here 1 MiB announced), holding the connection until
  // requestTimeout (5 min in gatewayServerOptions).
  const upstream = await startRawUpstream();
  const front = await startFront(upstream.url, { timeout: { read: 2000 } });
  const cases: Array<[string, string]> = [
    ['400 bad path', 'POST /a/../x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1048576\r\n\r\nx'],
    ['400 bad Host', 'POST /a HTTP/1.1\r\nHost: user@gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'],
    ['501 gzip, chunked', 'POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n'],
  ];
  const wrong: string[] = [];
  try {
    for (const [label, payload] of cases) {
      const socket: Socket = connect(front.port, '127.0.0.1');
      let answer = '';
      let closed = false;
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('error', () => {});
      socket.on('close', () => (closed = true));
      socket.write(payload);
      await waitFor(() => answer.includes('\r\n\r\n'), 3000);
      const head = answer.split('\r\n\r\n')[0]!.toLowerCase();
      if (!/^http\/1\.1 (400|501) /.test(head)) wrong.push(`${label}: ${JSON.stringify(statusLine(answer))}`);
      else if (!/\r\nconnection: close/.test(head)) wrong.push(`${label}: answered with ${JSON.stringify(/\r\nconnection: [^\r]*/.exec(head)?.[0]?.trim() ?? 'no Connection field')}`);
      if (!(await waitFor(() => closed, 3000))) wrong.push(`${label}: connection still open 3 s after the answer`);
      socket.destroy();
    }
    assert.equal(wrong, []);
    assert.is(upstream.received, '');
  } finally {
    await front.close();
    await upstream.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Broken upstreams, on every transport

const transports: Array<[string, () => Transport]> = [
  ['http', () => httpTransport()],
  ['got', () => gotTransport()],
  ['undici', () => undiciTransport()],
];

for (const [name, transport] of transports) {
  test(`${name}: malformed upstream answers (CL with TE, obs-fold, NUL, bare LF, chunk-size overflow in its own segment, Content-Length -1) are a short 502 without the upstream address; a 3 000 × 103 flood still ends in the 200; in-flight and fds back`, async () => {
    // RFC 9112 §6.1 and §6.3: a response with both framings, or an invalid length, is an
    // unrecoverable framing error for a proxy (nginx: "upstream sent ... while reading response
    // header", 502). RFC 9110 §15.2: a client parses any number of 1xx before the final answer.
    const upstream = await startRawUpstream();
    const front = await startFront(upstream.url, { timeout: { read: 2000 }, transport: transport() });
    try {
      await fetchRaw(`${front.url}/warm`);
      upstream.reset();
      await delay(100);
      const fds = openFds();
      const malformed: Array<[string, Responder]> = [
        ['CL with TE', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')],
        ['obs-fold', (s) => s.write('HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok')],
        ['NUL in a value', (s) => s.write('HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok')],
        ['bare LF', (s) => s.write('HTTP/1.1 200 OK\nX-A: a\nContent-Length: 2\n\nok')],
        ['Content-Length -1', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok')],
        ['chunk-size overflow, later', (s) => {
          s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
          setTimeout(() => s.write('FFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n'), 50);
        }],
      ];
      const wrong: string[] = [];
      for (const [label, respond] of malformed) {
        upstream.respond = respond;
        const answer = await fetchWithin(`${front.url}/x`, 5000);
        if (answer === 'hung') wrong.push(`${label}: no answer in 5 s`);
        else if (label.endsWith('later')) {
          // The head was sent: the client must see a broken body, never a clean end.
          if (answer.complete) wrong.push(`${label}: a complete ${answer.status}`);
        } else {
          if (answer.status !== 502) wrong.push(`${label}: ${answer.status} ${JSON.stringify(answer.text.slice(0, 60))}`);
          if (answer.body.length > 200 || answer.text.includes('127.0.0.1') || answer.text.includes(String(upstream.port))) wrong.push(`${label}: body ${JSON.stringify(answer.text)}`);
        }
        upstream.reset();
      }
      upstream.respond = (s) => {
        s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'.repeat(3000));
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal');
      };
      const flood = await fetchWithin(`${front.url}/flood`, 10_000);
      if (flood === 'hung' || flood.status !== 200 || flood.text !== 'final') wrong.push(`103 flood: ${flood === 'hung' ? 'hung' : `${flood.status} ${flood.text.slice(0, 40)}`}`);
      upstream.reset();
      assert.equal(wrong, []);
      assert.ok(await waitFor(() => front.relay.inFlight === 0 && openFds() <= fds, 3000), `in flight ${front.relay.inFlight}, fds ${openFds()} (start ${fds})`);
    } finally {
      await front.close();
      await upstream.close();
    }
  });

  test(`${name}: an upstream body longer than its Content-Length never poisons the pooled connection: the next request gets its own answer, not the extra bytes`, async () => {
    // Response queue poisoning (PortSwigger, "Response queue poisoning"): bytes after a complete
    // response, shaped as a response, must never be read as the next request's answer. nginx
    // closes the upstream connection ("upstream sent more data than specified").
    const upstream = await startRawUpstream();
    const poison = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON';
    const front = await startFront(upstream.url, { timeout: { read: 2000 }, transport: transport() });
    try {
      for (const when of ['same segment', '30 ms later']) {
        upstream.respond = (s, index) => {
          if (index % 2 === 1) return void s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal');
          if (when === 'same segment') s.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok${poison}`);
          else {
            s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
            setTimeout(() => s.write(poison), 30);
          }
        };
        const first = await fetchWithin(`${front.url}/first`, 5000);
        assert.ok(first !== 'hung' && first.text === 'ok', `${when}: first answer`);
        await delay(100);
        const second = await fetchWithin(`${front.url}/second`, 5000);
        assert.ok(second !== 'hung', `${when}: the second request hung`);
        assert.is.not(second.text, 'POISON', `${when}: the second client got the first response's extra bytes`);
        assert.is(second.text, 'real', `${when}: the second client gets its own answer`);
        upstream.reset();
      }
    } finally {
      await front.close();
      await upstream.close();
    }
  });
}

test('httpTransport: an upstream whose response head never ends (a header line every 100 ms) is a 504 ERR_READ_TIMEOUT, as gotTransport and undiciTransport answer, not a client held until the head limit', async () => {
  // docs/gateway.md: timeout.read is "silence before the response head"; gotTransport arms it as
  // got's `response` timeout (head within timeout.read) and undici's headersTimeout does the same:
  // both answer 504 after 800 ms here. Go's ResponseHeaderTimeout, Traefik's responseHeaderTimeout
  // and Envoy's route timeout bound the head the same way. httpTransport re-arms a socket
  // inactivity timer on every byte, so 8 bytes every 100 ms keep the client waiting for the
  // 16 KiB head limit (~200 s here; a byte a second: hours), counted in flight, with no log line.
  const upstream = await startRawUpstream();
  upstream.respond = (socket) => {
    socket.write('HTTP/1.1 200 OK\r\n');
    upstream.trickle(socket, 'X-A: 1\r\n', 100);
  };
  const front = await startFront(upstream.url, { timeout: { read: 800 }, transport: httpTransport() });
  try {
    const answer = await fetchWithin(`${front.url}/slow-head`, 6000);
    assert.ok(answer !== 'hung', 'the client got nothing in 6 s (timeout.read is 800 ms)');
    assert.is(answer.status, 504);
    assert.ok(await waitFor(() => front.relay.inFlight === 0, 2000));
  } finally {
    upstream.reset();
    await front.close();
    await upstream.close();
  }
});

for (const [name, transport] of transports.filter(([label]) => label !== 'got')) {
  test(`${name}: an upstream that sends "102 Processing" every 100 ms and never a final answer is ended (504) rather than holding the client forever, as gotTransport does`, async () => {
    // Issue 13 item 4: "Clients hang forever on some upstream faults ... Each must end"; the
    // brief's "a 1xx flood: no hang". The relay swallows 102 (the client sees nothing), so the
    // client waits with no byte, counted in flight, with no log line, for as long as the upstream
    // likes. gotTransport answers 504 after timeout.read (got's head timeout); Envoy's route
    // timeout ends it the same way.
    const upstream = await startRawUpstream();
    upstream.respond = (socket) => upstream.trickle(socket, 'HTTP/1.1 102 Processing\r\n\r\n', 100);
    const front = await startFront(upstream.url, { timeout: { read: 800 }, transport: transport() });
    try {
      const answer = await fetchWithin(`${front.url}/processing`, 6000);
      assert.ok(answer !== 'hung', 'the client got nothing in 6 s (timeout.read is 800 ms)');
      assert.ok(answer.status === 504 || answer.status === 502, `status ${answer.status}`);
      assert.ok(await waitFor(() => front.relay.inFlight === 0, 2000));
    } finally {
      upstream.reset();
      await front.close();
      await upstream.close();
    }
  });
}

test('an unsolicited "100 Continue" before the final 200: httpTransport and gotTransport skip it; undiciTransport answers the documented short 502 (undici refuses it), nothing leaked', async () => {
  // RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses received prior to a
  // final response, even if the client does not expect one." httpTransport and gotTransport relay
  // the 200. undici's HTTP/1.1 parser destroys the connection on any 100 it did not ask for
  // ("bad response", client-h1.js, no option to accept it): docs/transports.md lists it among
  // undiciTransport's limits, and the relay answers a short 502 ERR_UPSTREAM_PROTOCOL.
  const upstream = await startRawUpstream();
  upstream.respond = (socket) => socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const results: string[] = [];
  try {
    for (const [name, transport] of transports) {
      const front = await startFront(upstream.url, { timeout: { read: 2000 }, transport: transport() });
      try {
        const answer = await fetchRaw(`${front.url}/x`);
        results.push(`${name} ${answer.status}`);
        if (name === 'undici') {
          assert.ok(answer.body.length < 200, `body ${JSON.stringify(answer.text)}`);
          assert.not.ok(answer.text.includes('127.0.0.1') || answer.text.includes(String(upstream.port)), `body ${JSON.stringify(answer.text)}`);
          assert.ok(front.logger.lines.some((line) => line.fields.code === 'ERR_UPSTREAM_PROTOCOL'), 'logged as the upstream\'s protocol error');
        } else {
          assert.is(answer.text, 'ok');
        }
      } finally {
        await front.close();
      }
    }
    assert.equal(results, ['http 200', 'got 200', 'undici 502']);
  } finally {
    await upstream.close();
  }
});

test('an HTTP/2 client that opens with a zero flow-control window and never reads: its stream is cut after slowClientTimeout, the upstream response is closed, nothing stays in flight', async () => {
  // The HTTP/2 "zero window" slow-read attack (CVE-2019-9517 family): nginx's send_timeout, and
  // docs/configuration.md slowClientTimeout ("How long a client may leave the response unread").
  let upstreamOpen = 0;
  const upstream = await startUpstream(
    (_req, res) => {
      upstreamOpen++;
      res.on('close', () => upstreamOpen--);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let left = 256;
      const pump = () => {
        while (left-- > 0) if (!res.write(chunk)) return void res.once('drain', pump);
        res.end();
      };
      pump();
    },
    { streaming: true },
  );
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger, timeout: { read: 500 }, transport: httpTransport({ slowClientTimeout: 1000 }) });
  const server = createHttp2Server(relay.handle as never);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2Connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { settings: { initialWindowSize: 0 } });
  session.on('error', () => {});
  try {
    const stream = session.request({ ':path': '/big' });
    stream.on('error', () => {});
    stream.pause();
    let closedAt = 0;
    const started = Date.now();
    stream.on('close', () => (closedAt = Date.now() - started));
    assert.ok(await waitFor(() => closedAt > 0, 8000), 'the stream was never cut');
    assert.ok(closedAt >= 800, `cut after ${closedAt} ms, before slowClientTimeout`);
    assert.ok(await waitFor(() => relay.inFlight === 0 && upstreamOpen === 0, 3000), `in flight ${relay.inFlight}, upstream responses open ${upstreamOpen}`);
    assert.ok(logger.lines.some((line) => /client too slow/.test(line.message)));
  } finally {
    session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await relay.shutdown({ timeout: 500 });
    await upstream.close();
  }
});

test.run();
