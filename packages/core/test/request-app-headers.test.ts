import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { createRelay, type Relay } from '../src/index.js';
import { appRawHeaders } from '../src/request/app-headers.js';
import { readRequestHead } from '../src/request/forwarding.js';
import { responseHeadersFromRaw } from '../src/request/hop-by-hop.js';

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

test('hop-by-hop headers and Content-Length stay as the client sent them, whatever the app did; Connection no longer names what the app set', () => {
  const raw = ['Content-Length', '3', 'Connection', 'x-secret', 'X-Secret', '1'];
  const headers: IncomingHttpHeaders = { 'x-secret': '2', 'transfer-encoding': 'chunked', te: 'trailers', 'keep-alive': 'timeout=5' };
  assert.equal(appRawHeaders(requestOf(raw), headers), ['Content-Length', '3', 'Connection', '', 'x-secret', '2']);
  const listed = ['Connection', 'close, X-Added ,x-kept', 'X-Kept', 'k'];
  assert.equal(appRawHeaders(requestOf(listed), { 'x-kept': 'k', 'x-added': 'a' }), ['Connection', 'close,x-kept', 'X-Kept', 'k', 'x-added', 'a']);
});

test('values the app set as numbers or arrays, and names it spelled in capitals, are sent as header lines', () => {
  const headers = { 'x-count': 3, 'x-list': ['a', 'b'], 'X-Upper': 'u', 'x-null': null } as unknown as IncomingHttpHeaders;
  assert.equal(appRawHeaders(requestOf([]), headers), ['x-count', '3', 'x-list', 'a', 'x-list', 'b', 'x-upper', 'u']);
});

test('names are compared case-insensitively: the later key wins, as setHeader makes it in http-proxy', () => {
  const raw = ['x-user-id', '1', 'Accept', 'text/html'];
  const headers = { 'x-user-id': '1', accept: 'text/html', 'X-User-Id': '42' } as IncomingHttpHeaders;
  assert.equal(appRawHeaders(requestOf(raw), headers), ['x-user-id', '42', 'Accept', 'text/html']);
  // A mixed-case key set to what the client sent keeps the client's line; one set to null deletes it.
  assert.equal(appRawHeaders(requestOf(raw), { ...headers, 'X-User-Id': '1' }), raw);
  assert.equal(appRawHeaders(requestOf(raw), { ...headers, 'X-User-Id': null } as unknown as IncomingHttpHeaders), ['Accept', 'text/html']);
});

test('only own keys of req.headers count: a client __proto__ line never takes a value from the prototype', () => {
  const raw = ['__proto__', 'client-value', 'constructor', 'c', 'Accept', 'text/html'];
  const headers = { accept: 'text/html' } as IncomingHttpHeaders;
  assert.equal(appRawHeaders(requestOf(raw), headers), ['Accept', 'text/html']);
});

test('HTTP/2: a Host the app set replaces the client\'s :authority, as on HTTP/1.1; one it left alone keeps it', () => {
  const raw = [':method', 'GET', ':path', '/x', ':authority', 'a.test', 'accept', '*/*'];
  const headers: IncomingHttpHeaders = { ':method': 'GET', ':path': '/x', ':authority': 'a.test', accept: '*/*' };
  const h2 = requestOf(raw, { httpVersionMajor: 2 });
  assert.equal(appRawHeaders(h2, { ...headers, host: 'tenant.test' }), [':method', 'GET', ':path', '/x', 'accept', '*/*', 'host', 'tenant.test']);
  assert.is(readRequestHead(appRawHeaders(h2, { ...headers, host: 'tenant.test' })).host, 'tenant.test');
  assert.equal(appRawHeaders(h2, headers), raw);
  const both = [...raw, 'host', 'a.test'];
  assert.equal(appRawHeaders(requestOf(both, { httpVersionMajor: 2 }), { ...headers, host: 'a.test' }), both);
});

test('a name or value the app set that cannot be sent throws ERR_INTERNAL (500): the app\'s fault, not the client\'s', () => {
  const raw = ['Host', 'a.test', 'X-Tenant', 'acme'];
  const broken: Array<Record<string, unknown>> = [
    { host: 'a.test\r\nX-Injected: 1' },
    { host: ['a.test', 'b.test'] },
    { host: 'a.test', 'x-tenant': 'acme\nX-Admin: 1' },
    { host: 'a.test', 'x-tenant': 'acme', 'x-new': ['ok', 'bad\0'] },
    { host: 'a.test', 'x-tenant': 'acme', 'x user': '1' },
  ];
  for (const headers of broken) {
    try {
      appRawHeaders(requestOf(raw), headers as IncomingHttpHeaders);
      assert.unreachable(JSON.stringify(headers));
    } catch (error) {
      assert.is((error as { code?: string }).code, 'ERR_INTERNAL', JSON.stringify(headers));
      assert.is((error as { status?: number }).status, 500);
    }
  }
  // The client's own lines are not the app's to answer for: they stay readRequestHead's (400).
  assert.equal(appRawHeaders(requestOf(['Host', 'a b']), { host: 'a b' }), ['Host', 'a b']);
});

test('header names that are Object.prototype properties: constructor is a header like any other, __proto__ is dropped', () => {
  const raw = ['Host', 'a.test', '__proto__', 'client-value', 'Constructor', 'one', 'constructor', 'two', '__proto__', 'again'];
  const head = readRequestHead(raw);
  assert.equal(Object.keys(head.headers), ['constructor']);
  assert.equal(head.headers.constructor, ['one', 'two']);
  assert.is(Object.getPrototypeOf(head.headers), Object.prototype, 'the record keeps its prototype');
  const response = responseHeadersFromRaw(['constructor', 'x', '__proto__', 'y', 'set-cookie', 'a=1']);
  assert.equal({ ...response }, { constructor: 'x', 'set-cookie': ['a=1'] });
  assert.is(Object.getPrototypeOf(response), Object.prototype);
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

function valuesOf(raw: string[], name: string): string[] {
  const values: string[] = [];
  for (let index = 0; index < raw.length; index += 2) if (raw[index]!.toLowerCase() === name) values.push(raw[index + 1]!);
  return values;
}

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

// A client header named __proto__ (a valid token) used to make readRequestHead push onto
// Object.prototype: a 500 ERR_INTERNAL for every such request. It is dropped instead (see
// inheritedName in hop-by-hop.ts); a header named constructor is relayed like any other.
const protoRequest = 'GET /orders HTTP/1.1\r\nHost: a.test\r\n__proto__: client-value\r\nconstructor: c\r\nConnection: close\r\n\r\n';

test('relay.handle: a client header named __proto__ is dropped, not a 500; constructor is relayed', async () => {
  const port = await editingServer((relay, req, res) => relay.handle(req, res));
  const before = upstream.requests.length;
  assert.match(await sendRaw(port, protoRequest), /^HTTP\/1\.1 200 /);
  assert.is(upstream.requests.length, before + 1);
  const raw = upstream.requests.at(-1)!.rawHeaders;
  assert.equal(valuesOf(raw, '__proto__'), [], 'never a value the relay made up');
  assert.equal(valuesOf(raw, 'constructor'), ['c']);
});

test('relay.dispatch with route.headers: a client __proto__ header is never sent with a value the relay made up', async () => {
  const port = await editingServer((relay, req, res) => relay.dispatch(req, res, { path: req.url!, mountPath: '', headers: req.headers }));
  const before = upstream.requests.length;
  assert.match(await sendRaw(port, protoRequest), /^HTTP\/1\.1 200 /);
  assert.is(upstream.requests.length, before + 1);
  const raw = upstream.requests.at(-1)!.rawHeaders;
  assert.equal(valuesOf(raw, '__proto__'), []);
  assert.equal(valuesOf(raw, 'x-user-id'), ['42']);
  assert.equal(valuesOf(raw, 'constructor'), ['c'], 'node:http gives req.headers an own constructor key: not an edit');
});

test.run();
