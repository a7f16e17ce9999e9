// An upgrade the relay does not speak (`Upgrade: h2c`, offered by `curl --http2` and Java's
// HttpClient on every http: request) is served as the plain HTTP/1.1 request it also is (RFC 9110
// §7.8), through `relay.upgrade` on a plain or a TLS server: its body, and the connection kept alive.
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as connectTcp, type AddressInfo, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, startUpstream, tlsFixture, type Upstream } from '@relay/testkit';
import { createRelay, type Relay } from '../src/index.js';

let upstream: Upstream;
let relay: Relay;

test.before(async () => {
  upstream = await startUpstream();
  relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
});

test.after(async () => {
  await relay.shutdown({ timeout: 1000 });
  await upstream.close();
});

async function listening(server: Server): Promise<number> {
  server.on('upgrade', relay.upgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Writes `requests` one after the other on one connection, each after the previous answer ended; resolves with each answer's text. */
async function exchangeOn(socket: Socket, requests: readonly string[]): Promise<string[]> {
  const answers: string[] = [];
  let buffered = '';
  socket.on('data', (chunk: Buffer) => (buffered += chunk.toString('latin1')));
  for (const request of requests) {
    buffered = '';
    socket.write(request);
    const deadline = Date.now() + 3000;
    while (!/\r\n\r\n[\s\S]*\}$/.test(buffered) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    answers.push(buffered);
  }
  socket.destroy();
  return answers;
}

const h2cPost = (body: string) =>
  `POST /form HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const plainGet = 'GET /next HTTP/1.1\r\nHost: gw\r\n\r\n';

test('a POST offering Upgrade: h2c reaches the upstream with its body and without the offer; the connection serves the next request', async () => {
  const server = createServer(relay.handle);
  const port = await listening(server);
  const before = upstream.requests.length;
  const [first, second] = await exchangeOn(connectTcp(port, '127.0.0.1'), [h2cPost('a=1&b=2'), plainGet]);
  await close(server);
  assert.match(first!, /^HTTP\/1\.1 200 /, first);
  assert.match(second!, /^HTTP\/1\.1 200 /, 'the same connection serves the next request');
  const seen = upstream.requests.slice(before);
  assert.is(seen.length, 2);
  assert.is(seen[0]!.method, 'POST');
  assert.is(seen[0]!.body.toString(), 'a=1&b=2');
  assert.is(seen[0]!.headers.upgrade, undefined);
  assert.is(seen[0]!.headers['http2-settings'], undefined);
  assert.is(seen[1]!.url, '/next');
});

test('over TLS too: an h2c offer on an https server is served as the plain request', async () => {
  const server = createHttpsServer(tlsFixture, relay.handle);
  const port = await listening(server);
  const socket = connectTls({ port, host: '127.0.0.1', rejectUnauthorized: false });
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  const [answer] = await exchangeOn(socket, [h2cPost('x')]);
  await close(server);
  assert.match(answer!, /^HTTP\/1\.1 200 /, answer);
  assert.match(answer!, /"body":"x"/);
});

test.run();
