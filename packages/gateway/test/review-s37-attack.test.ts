// Review s37 (issue 13, the attack run against `relay serve`), black box: the gateway driven
// in-process through `serve()` (the bin's own listeners: node:http with gatewayServerOptions, and
// the TLS listener of secure-listener.ts offering HTTP/2 beside HTTP/1.1), with raw TCP and raw
// HTTP/2 frames over TLS for what node's client will not send. Reviewed what the review-s36*
// gateway files did not: CONNECT (authority-form) on the plain listener, HTTP/2 rapid reset
// (CVE-2023-44487), a CONTINUATION flood (CVE-2024-27316 family), PING and SETTINGS floods from a
// client that reads nothing, an HPACK header-list bomb, and HTTP/2 → HTTP/1.1 downgrade smuggling
// (H2.CL, H2.TE, CRLF in a field value). Each: no crash, no hang, nothing smuggled upstream,
// in-flight and open fds back to where they started, and the gateway still serves.
import { readdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, memoryLogger, sendRaw, startUpstream, tlsFixture, waitFor, type Upstream } from '@relay/testkit';
import { serve, type RunningGateway } from '../src/index.js';
import { configDir } from './bin.js';

const files = configDir();
let api: Upstream;
let running: RunningGateway;
let plainPort = 0;
let tlsPort = 0;
/** Requests the upstream received, as `METHOD url`, with their body and any header holding CR or LF. */
const seen: string[] = [];

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const odd = req.rawHeaders.filter((field) => /[\r\n\0]/.test(field));
    seen.push(`${req.method} ${req.url} body=${JSON.stringify(Buffer.concat(chunks).toString())}${odd.length > 0 ? ` odd=${JSON.stringify(odd)}` : ''}`);
    setTimeout(() => res.end(`ok ${req.url}`), req.url?.includes('slow') ? 200 : 0);
  });
}

function inFlight(): number {
  return running.gateway.status().inFlight;
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

test.before(async () => {
  api = await startUpstream(upstreamHandler, { streaming: true });
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  const config = files.write(
    'gateway.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0 }',
      '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }',
      'routes:',
      '  - name: api',
      '    match: { path: /api }',
      `    upstream: ${api.url}/v1`,
      '',
    ].join('\n'),
  );
  running = await serve({ config, logger: memoryLogger() as never, watch: false });
  plainPort = (running.servers[0]!.address() as { port: number }).port;
  tlsPort = (running.servers[1]!.address() as { port: number }).port;
});

test.after(async () => {
  await running?.stop();
  await api?.close();
  files.cleanup();
});

// ---- raw HTTP/2 over TLS

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** An HPACK literal field without indexing, new name, no Huffman, lengths under 127 (RFC 7541 §6.2.2). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name, 'latin1'), Buffer.from([value.length]), Buffer.from(value, 'latin1')]);
}

/** A request head: `:scheme https` (static 7), `:path` (indexed name 4), `:method` and `:authority` as literals. */
function requestHead(method: string, path: string, extra: Buffer[] = []): Buffer {
  return Buffer.concat([literal(':method', method), Buffer.from([0x87, 0x04, path.length]), Buffer.from(path), literal(':authority', 'localhost'), ...extra]);
}

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

interface RawH2 {
  socket: TLSSocket;
  frames: Frame[];
  readonly closed: boolean;
  /** What came back: `HEADERS:1:88` (first HPACK byte), `RST:1:1`, `GOAWAY:2` ... */
  summary(): string[];
}

/** A TLS connection speaking HTTP/2 by hand: preface and empty SETTINGS sent, SETTINGS acknowledged. */
function rawH2(): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const frames: Frame[] = [];
    let closed = false;
    const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca: tlsFixture.cert, ALPNProtocols: ['h2'] }, () => {
      socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))]));
      resolve({
        socket,
        frames,
        get closed() {
          return closed;
        },
        summary: () =>
          frames.flatMap((f) => {
            if (f.type === 1) return [`HEADERS:${f.stream}:${f.payload[0]!.toString(16)}`];
            if (f.type === 3) return [`RST:${f.stream}:${f.payload.readUInt32BE(0)}`];
            if (f.type === 7) return [`GOAWAY:${f.payload.readUInt32BE(4)}`];
            return [];
          }),
      });
    });
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        const parsed: Frame = { type: pending[3]!, flags: pending[4]!, stream: pending.readUInt32BE(5) & 0x7fffffff, payload: pending.subarray(9, 9 + length) };
        pending = pending.subarray(9 + length);
        frames.push(parsed);
        if (parsed.type === 4 && (parsed.flags & 1) === 0 && !socket.destroyed) socket.write(frame(4, 1, 0, Buffer.alloc(0)));
      }
    });
    socket.on('error', (error) => (closed ? undefined : reject(error)));
    socket.on('close', () => (closed = true));
  });
}

/** One honest request on a new raw connection: the first HPACK byte of the answer's HEADERS (0x88 = 200). */
async function honestH2Status(): Promise<string> {
  const connection = await rawH2();
  connection.socket.write(frame(1, 0x5, 1, requestHead('GET', '/api/honest')));
  await waitFor(() => connection.frames.some((f) => (f.type === 1 || f.type === 3) && f.stream === 1), 5000);
  connection.socket.destroy();
  return connection.summary().find((entry) => entry.startsWith('HEADERS:1') || entry.startsWith('RST:1')) ?? 'nothing';
}

test('CONNECT (authority-form) on the plain listener gets a short 4xx answer, as nginx answers 400, not a connection closed without a word', async () => {
  // The brief: every hostile request gets "a clear 4xx/5xx with a short body". RFC 9110 §9.3.6:
  // CONNECT asks for a tunnel, which a reverse proxy does not offer; nginx answers 400 (its access
  // log: "CONNECT localhost:22 HTTP/1.0" 400), Envoy 404 / 403 without a CONNECT route. The
  // gateway's node:http server has no 'connect' listener, so node destroys the socket unanswered.
  seen.length = 0;
  const answer = await sendRaw(plainPort, 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', 3000);
  assert.match(answer.split('\r\n')[0] ?? '', /^HTTP\/1\.1 4\d\d /, `answer: ${JSON.stringify(answer.slice(0, 80))}`);
  assert.not.ok(answer.includes(String(api.port)), 'no upstream port in the answer');
  assert.equal(seen, [], 'nothing reached the upstream');
});

test('HTTP/2 rapid reset (CVE-2023-44487): 1 000 HEADERS + RST_STREAM pairs in one write reach the upstream at most 128 times, nothing stays in flight, fds return, and a new session is served', async () => {
  // CVE-2023-44487: a stream reset right after its HEADERS does not count against
  // SETTINGS_MAX_CONCURRENT_STREAMS; a proxy that starts upstream work per stream amplifies it.
  // nginx 1.25.3 / Envoy 1.27.1 cap the work (and GOAWAY the session); docs/gateway.md caps a
  // connection at 128 streams at once.
  assert.match(await honestH2Status(), /^HEADERS:1:88$/);
  await delay(200);
  const fds = openFds();
  seen.length = 0;
  const connection = await rawH2();
  const batch: Buffer[] = [];
  for (let index = 0; index < 1000; index++) {
    const id = 1 + 2 * index;
    batch.push(frame(1, 0x5, id, requestHead('GET', `/api/slow${index}`)), frame(3, 0, id, Buffer.from([0, 0, 0, 8])));
  }
  connection.socket.write(Buffer.concat(batch));
  await delay(1500);
  assert.ok(seen.length <= 128, `${seen.length} upstream requests for 1 000 reset streams`);
  connection.socket.destroy();
  assert.ok(await waitFor(() => inFlight() === 0, 5000), `in flight ${inFlight()}`);
  assert.match(await honestH2Status(), /^HEADERS:1:88$/, 'a new session is served');
  assert.ok(await waitFor(() => openFds() <= fds, 5000), `fds ${openFds()} (start ${fds})`);
});

test('HTTP/2 CONTINUATION flood: a header block that never ends is cut (GOAWAY or close) within a few frames; memory stays bounded and nothing reaches the upstream', async () => {
  // CVE-2024-27316 / CVE-2024-27983 family (VU#421644): endless CONTINUATION frames without
  // END_HEADERS must not be buffered without bound; nghttp2 ≥ 1.61 and Envoy 1.29.3 cap them.
  seen.length = 0;
  const before = process.memoryUsage().rss;
  const connection = await rawH2();
  connection.socket.write(frame(1, 0x0, 1, requestHead('GET', '/api/continuation')));
  const junk = frame(9, 0, 1, Buffer.concat(Array.from({ length: 40 }, (_, index) => literal(`x-c${index}`, 'v'.repeat(100)))));
  let sent = 0;
  for (; sent < 3000 && !connection.closed; sent++) {
    if (!connection.socket.write(junk)) await delay(1);
  }
  assert.ok(await waitFor(() => connection.closed || connection.frames.some((f) => f.type === 7), 3000), 'the session was never ended');
  connection.socket.destroy();
  assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, `rss grew ${(process.memoryUsage().rss - before) >> 20} MiB`);
  assert.equal(seen, []);
  assert.ok(await waitFor(() => inFlight() === 0, 3000));
  assert.match(await honestH2Status(), /^HEADERS:1:88$/);
});

test('HTTP/2 PING and SETTINGS floods from a client that reads nothing end its session (the acknowledgements are not queued without bound); the gateway keeps serving', async () => {
  // CVE-2019-9512 (ping flood) and CVE-2019-9515 (settings flood): a peer that never reads the
  // acknowledgements it provokes must be disconnected (nginx 1.16.1, Envoy 1.11.1, nghttp2's
  // outbound queue limit).
  for (const [label, unit] of [
    ['PING', frame(6, 0, 0, Buffer.alloc(8))],
    ['SETTINGS', frame(4, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]))],
  ] as const) {
    const connection = await rawH2();
    await delay(50);
    connection.socket.pause();
    const block = Buffer.concat(Array.from({ length: 1000 }, () => unit));
    for (let round = 0; round < 300 && !connection.closed; round++) {
      connection.socket.write(block);
      await delay(2);
    }
    assert.ok(await waitFor(() => connection.closed, 5000), `${label} flood: the session stayed open`);
    connection.socket.destroy();
  }
  assert.match(await honestH2Status(), /^HEADERS:1:88$/);
});

test('HTTP/2 → HTTP/1.1 downgrade smuggling: H2.CL (content-length 0 or short with a request in DATA), H2.TE, and CR/LF in a field value never put a second request on the upstream connection', async () => {
  // PortSwigger, "HTTP/2: the sequel is always worse": a DATA length that contradicts
  // content-length is malformed (RFC 9113 §8.1.1), transfer-encoding is a connection-specific field
  // (§8.2.2), CR/LF/NUL in a value is malformed (§8.2.1): an intermediary "MUST NOT forward" them.
  const smuggled = 'GET /v1/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
  const cases: Array<[string, Buffer[]]> = [
    ['H2.CL 0', [frame(1, 0x4, 1, requestHead('POST', '/api/a', [literal('content-length', '0')])), frame(0, 1, 1, Buffer.from(smuggled))]],
    ['H2.CL short', [frame(1, 0x4, 1, requestHead('POST', '/api/a', [literal('content-length', '3')])), frame(0, 1, 1, Buffer.from(`abc${smuggled}`))]],
    ['H2.TE', [frame(1, 0x4, 1, requestHead('POST', '/api/a', [literal('transfer-encoding', 'chunked')])), frame(0, 1, 1, Buffer.from(`0\r\n\r\n${smuggled}`))]],
    ['CRLF in a value', [frame(1, 0x5, 1, requestHead('GET', '/api/a', [literal('x-a', `b\r\nContent-Length: 40\r\n\r\n${smuggled.slice(0, 20)}`)]))]],
    ['CRLF in :path', [frame(1, 0x5, 1, requestHead('GET', '/api/a HTTP/1.1\r\nX: y'))]],
    ['CRLF in :method', [frame(1, 0x5, 1, requestHead('GET /v1/smuggled HTTP/1.1\r\nHost: y\r\n\r\nGET', '/api/a'))]],
  ];
  const wrong: string[] = [];
  for (const [label, frames] of cases) {
    seen.length = 0;
    const connection = await rawH2();
    connection.socket.write(Buffer.concat(frames));
    await waitFor(() => connection.frames.some((f) => (f.type === 1 || f.type === 3 || f.type === 7) && f.stream <= 1), 3000);
    await delay(100);
    connection.socket.destroy();
    if (seen.some((line) => line.includes('smuggled') || line.includes(' odd='))) wrong.push(`${label}: ${JSON.stringify(seen)}`);
    if (seen.some((line) => line.startsWith('POST'))) wrong.push(`${label}: a malformed body was forwarded: ${JSON.stringify(seen)}`);
  }
  assert.equal(wrong, []);
  assert.ok(await waitFor(() => inFlight() === 0, 3000));
});

test('HTTP/2 HPACK header-list bomb (one 4 000-byte field indexed, then referenced 2 000 times: 8 MB decoded) is refused on its stream; nothing reaches the upstream, the gateway keeps serving', async () => {
  // RFC 7541 §7.3 / RFC 9113 §10.5.1: header-list size is checked on the decoded size
  // (SETTINGS_MAX_HEADER_LIST_SIZE); nginx's large_client_header_buffers, Envoy's
  // max_request_headers_kb. One small frame must not make the gateway build an 8 MB request.
  seen.length = 0;
  const connection = await rawH2();
  const value = 'v'.repeat(4000);
  // Literal with incremental indexing, new name (0x40); value length 4000 as a 7-bit-prefix integer.
  const insert = Buffer.concat([Buffer.from([0x40, 5]), Buffer.from('x-big'), Buffer.from([0x7f, ((4000 - 127) & 0x7f) | 0x80, (4000 - 127) >> 7]), Buffer.from(value)]);
  const references = Buffer.alloc(2000, 0xbe); // indexed field 62: the first dynamic-table entry
  connection.socket.write(frame(1, 0x5, 1, Buffer.concat([requestHead('GET', '/api/bomb'), insert, references])));
  assert.ok(await waitFor(() => connection.frames.some((f) => (f.type === 3 && f.stream === 1) || f.type === 7 || (f.type === 1 && f.stream === 1)), 3000) || connection.closed, 'no answer to the bomb');
  const answer = connection.summary().find((entry) => entry.includes(':1:') || entry.startsWith('GOAWAY')) ?? '';
  assert.not.ok(/^HEADERS:1:88/.test(answer), `the bomb was served: ${answer}`);
  connection.socket.destroy();
  assert.equal(seen, []);
  assert.match(await honestH2Status(), /^HEADERS:1:88$/);
});

test.run();
