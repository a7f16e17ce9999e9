import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { createRelay, type Relay } from '../src/index.js';
import { appRawHeaders } from '../src/request/app-headers.js';

// `DispatchRoute.headers`: a front door hands the relay `req.headers` as the app's middleware left
// it; the relay sends the edits and keeps the client's lines for what was not edited.

/** A request as `appRawHeaders` reads it. */
function requestOf(rawHeaders: string[], facts: { httpVersionMajor?: number; joinDuplicateHeaders?: boolean } = {}): IncomingMessage {
  return { rawHeaders, httpVersionMajor: facts.httpVersionMajor ?? 1, joinDuplicateHeaders: facts.joinDuplicateHeaders ?? null } as unknown as IncomingMessage;
}

test('untouched headers keep their raw lines; added, changed and deleted ones follow req.headers', () => {
  const raw = ['Host', 'a.test', 'Authorization', 'Bearer x', 'X-Tenant', 'spoofed', 'Accept', 'text/html'];
  const headers: IncomingHttpHeaders = { host: 'a.test', 'x-tenant': 'acme', accept: 'text/html', 'x-user-id': '42' };
  assert.equal(appRawHeaders(requestOf(raw), headers), ['Host', 'a.test', 'x-tenant', 'acme', 'Accept', 'text/html', 'x-user-id', '42']);
});

test('HTTP/1: a repeated singleton node showed only the first of, or a repeated list node joined, is not an edit', () => {
  const raw = ['User-Agent', 'one', 'X-Trace', 'a', 'Cookie', 'a=1', 'user-agent', 'two', 'x-trace', 'b', 'Cookie', 'b=2'];
  const headers: IncomingHttpHeaders = { 'user-agent': 'one', 'x-trace': 'a, b', cookie: 'a=1; b=2' };
  assert.equal(appRawHeaders(requestOf(raw), headers), raw);
  // With joinDuplicateHeaders node joins singletons too; the first value alone is then an edit.
  assert.equal(appRawHeaders(requestOf(raw, { joinDuplicateHeaders: true }), { ...headers, 'user-agent': 'one, two' }), raw);
  assert.equal(appRawHeaders(requestOf(raw, { joinDuplicateHeaders: true }), headers), [
    'user-agent', 'one', 'X-Trace', 'a', 'Cookie', 'a=1', 'x-trace', 'b', 'Cookie', 'b=2',
  ]);
});

test('HTTP/2: pseudo-headers stay; node:http2 singletons are compared as node:http2 builds them', () => {
  const raw = [':method', 'GET', ':path', '/x', ':authority', 'a.test', 'range', 'bytes=0-1', 'cookie', 'a=1', 'cookie', 'b=2', 'range', 'bytes=2-3'];
  const headers: IncomingHttpHeaders = { ':method': 'GET', ':path': '/x', ':authority': 'a.test', range: 'bytes=0-1', cookie: 'a=1; b=2' };
  assert.equal(appRawHeaders(requestOf(raw, { httpVersionMajor: 2 }), headers), raw);
  assert.equal(appRawHeaders(requestOf(raw, { httpVersionMajor: 2 }), { ':path': '/y' }), [':method', 'GET', ':path', '/x', ':authority', 'a.test']);
});

test('hop-by-hop headers and Content-Length stay as the client sent them, whatever the app did', () => {
  const raw = ['Content-Length', '3', 'Connection', 'x-secret', 'X-Secret', '1'];
  const headers: IncomingHttpHeaders = { 'x-secret': '2', 'transfer-encoding': 'chunked', te: 'trailers', 'keep-alive': 'timeout=5' };
  assert.equal(appRawHeaders(requestOf(raw), headers), ['Content-Length', '3', 'Connection', 'x-secret', 'x-secret', '2']);
});

test('values the app set as numbers or arrays, and names it spelled in capitals, are sent as header lines', () => {
  const headers = { 'x-count': 3, 'x-list': ['a', 'b'], 'X-Upper': 'u', 'x-null': null } as unknown as IncomingHttpHeaders;
  assert.equal(appRawHeaders(requestOf([]), headers), ['x-count', '3', 'x-list', 'a', 'x-list', 'b', 'x-upper', 'u']);
});

let upstream: Upstream;
const servers: Server[] = [];
const relays: Relay[] = [];

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await Promise.all(servers.map((server) => close(server)));
  await Promise.all(relays.map((relay) => relay.shutdown()));
  await upstream.close();
});

/** A bare server that edits req.headers as a middleware would, then hands the request to `serve`. */
async function editingServer(serve: (relay: Relay, req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
  relays.push(relay);
  const server = createServer((req, res) => {
    req.headers['x-user-id'] = '42';
    delete req.headers.authorization;
    serve(relay, req, res);
  });
  servers.push(server);
  return Number(new URL(await listen(server)).port);
}

const request = 'GET /orders HTTP/1.1\r\nHost: a.test\r\nAuthorization: Bearer x\r\nConnection: close\r\n\r\n';

test("relay.dispatch with route.headers sends the edits upstream; the forwarding headers are the relay's own", async () => {
  const port = await editingServer((relay, req, res) => relay.dispatch(req, res, { path: req.url!, mountPath: '', headers: req.headers }));
  assert.match(await sendRaw(port, request), /^HTTP\/1\.1 200 /);
  const seen = upstream.requests.at(-1)!.headers;
  assert.is(seen['x-user-id'], '42');
  assert.is(seen.authorization, undefined);
  assert.is(seen['x-forwarded-host'], 'a.test');
});

test('relay.handle and dispatch without route.headers send the client lines: nothing reads req.headers', async () => {
  const port = await editingServer((relay, req, res) => relay.dispatch(req, res, { path: req.url!, mountPath: '' }));
  assert.match(await sendRaw(port, request), /^HTTP\/1\.1 200 /);
  assert.is(upstream.requests.at(-1)!.headers.authorization, 'Bearer x');
  const handled = await editingServer((relay, req, res) => relay.handle(req, res));
  assert.match(await sendRaw(handled, request), /^HTTP\/1\.1 200 /);
  assert.is(upstream.requests.at(-1)!.headers['x-user-id'], undefined);
});

test.run();
