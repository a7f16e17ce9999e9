import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import express from 'express';
import qs from 'qs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay, type RelayOptions } from '@relay/core';
import { fetchRaw, memoryLogger, startUpstream, type MemoryLogger, type SeenRequest, type Upstream } from '@relay/testkit';
import { toConnect, type ConnectMiddleware, type ConnectOptions } from '../src/index.js';
import { frameworks, express5, type Framework, type RunningApp } from './apps.js';

// A body an app-wide body parser already read arrives intact upstream: rebuilt from req.body
// with a fresh Content-Length, never empty, never a hang.

let upstream: Upstream;
const relays: Relay[] = [];
const apps: RunningApp[] = [];

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await Promise.all(apps.map((app) => app.close()));
  await Promise.all(relays.map((relay) => relay.shutdown()));
  await upstream.close();
});

/** The parsers most apps put in front of everything. */
const parsers = (): ConnectMiddleware[] => [
  express.json(),
  express.urlencoded({ extended: true }),
  express.text(),
  express.raw({ type: 'application/octet-stream' }),
];

async function gateway(
  framework: Framework,
  before: ConnectMiddleware[],
  options: { relay?: Partial<RelayOptions>; connect?: ConnectOptions; logger?: MemoryLogger } = {},
): Promise<RunningApp> {
  const relay = createRelay({ targetBaseUrl: upstream.url, timeout: 5000, logger: options.logger, ...options.relay });
  await relay.startup();
  relays.push(relay);
  const app = await framework.start({ before, mounts: [['/auth', toConnect(relay, options.connect)]] });
  apps.push(app);
  return app;
}

/** Posts through the gateway and returns what the upstream saw of it. */
async function through(app: RunningApp, headers: Record<string, string>, body: string | Buffer): Promise<{ status: number; seen: SeenRequest }> {
  const before = upstream.requests.length;
  const response = await fetchRaw(`${app.url}/auth/echo`, { method: 'POST', headers, body });
  assert.is(response.status, 200, response.text);
  assert.is(upstream.requests.length, before + 1, 'exactly one upstream request');
  return { status: response.status, seen: upstream.requests[before]! };
}

function assertFramed(seen: SeenRequest): void {
  assert.is(seen.headers['content-length'], String(seen.body.length), 'a fresh Content-Length');
  assert.is(seen.headers['transfer-encoding'], undefined);
  assert.is(seen.headers['content-encoding'], undefined, 'the parser decoded the body');
  assert.ok(seen.body.length > 0, 'never an empty body');
}

const document = { user: 'ada', roles: ['admin', 'dev'], profile: { age: 36, active: true, manager: null }, note: 'héllo ✓ "quoted"' };
const form = 'user[name]=ada&user[roles][]=admin&user[roles][]=dev&tags=a&tags=b&q=x+y%26z&empty=&list[0][id]=1&list[1][id]=2';

for (const framework of frameworks) {
  test(`${framework.name}: a JSON body after express.json() arrives intact`, async () => {
    const app = await gateway(framework, parsers());
    const { seen } = await through(app, { 'content-type': 'application/json' }, JSON.stringify(document));
    assertFramed(seen);
    assert.equal(JSON.parse(seen.body.toString('utf8')), document);
    assert.is(seen.headers['content-type'], 'application/json');
  });

  test(`${framework.name}: a chunked, gzip-encoded JSON body arrives decoded with a Content-Length`, async () => {
    const app = await gateway(framework, parsers());
    const { seen } = await through(app, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'transfer-encoding': 'chunked' }, gzipSync(JSON.stringify(document)));
    assertFramed(seen);
    assert.equal(JSON.parse(seen.body.toString('utf8')), document);
  });

  test(`${framework.name}: a urlencoded body (nested, qs) after express.urlencoded() arrives intact`, async () => {
    const app = await gateway(framework, parsers());
    const { seen } = await through(app, { 'content-type': 'application/x-www-form-urlencoded' }, form);
    assertFramed(seen);
    assert.equal(qs.parse(seen.body.toString('utf8')), qs.parse(form), 'qs reads the same fields back');
    assert.is(new URLSearchParams(seen.body.toString('utf8')).get('q'), 'x y&z');
  });

  test(`${framework.name}: text and raw bodies arrive byte for byte`, async () => {
    const app = await gateway(framework, parsers());
    const utf8 = await through(app, { 'content-type': 'text/plain; charset=utf-8' }, 'héllo wörld ✓');
    assertFramed(utf8.seen);
    assert.is(utf8.seen.body.toString('utf8'), 'héllo wörld ✓');
    const latin1 = Buffer.from('café au lait', 'latin1');
    const legacy = await through(app, { 'content-type': 'text/plain; charset=iso-8859-1' }, latin1);
    assert.ok(legacy.seen.body.equals(latin1), 'latin1 bytes kept');
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, index) => index));
    const raw = await through(app, { 'content-type': 'application/octet-stream' }, bytes);
    assertFramed(raw.seen);
    assert.ok(raw.seen.body.equals(bytes));
  });

  test(`${framework.name}: an empty parsed body stays empty (Content-Length: 0), and an unparsed one streams untouched`, async () => {
    const app = await gateway(framework, parsers());
    const empty = await through(app, { 'content-type': 'application/json', 'content-length': '0' }, '');
    assert.is(empty.seen.headers['content-length'], '0');
    assert.is(empty.seen.body.length, 0, 'not "{}"');
    const xml = '<login user="ada"/>';
    const streamed = await through(app, { 'content-type': 'application/xml' }, xml);
    assert.is(streamed.seen.body.toString(), xml);
    assert.is(streamed.seen.headers['content-length'], String(xml.length));
  });

  test(`${framework.name}: a body read by a middleware that cannot be rebuilt gets a clear 500 and a log line, and the app keeps serving`, async () => {
    const logger = memoryLogger();
    const app = await gateway(framework, [readsMultipart, ...parsers()], { logger });
    const before = upstream.requests.length;
    const refused = await fetchRaw(`${app.url}/auth/upload`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: multipart });
    assert.is(refused.status, 500);
    assert.match(refused.text, /ERR_BODY_CONSUMED/);
    assert.match(refused.text, /read before the relay/);
    assert.is(upstream.requests.length, before, 'nothing was sent upstream');
    const line = logger.lines.find((entry) => entry.fields.code === 'ERR_BODY_CONSUMED');
    assert.ok(line, 'a log line');
    assert.is(line!.level, 'error');
    assert.match(String(line!.fields.error), /multipart\/form-data/);
    assert.match(String(line!.fields.error), /mount the relay before the body parser/);
    const after = await fetchRaw(`${app.url}/auth/still-serving`);
    assert.is(after.status, 200);
  });
}

test('Express 5, extended: false: a flat form keeps repeated keys and bracketed names as they were', async () => {
  const app = await gateway(express5, [express.urlencoded({ extended: false })]);
  const flat = 'a=1&a=2&b%5Bc%5D=3&name=J%C3%BCrgen&plus=1%2B1&space=a+b';
  const { seen } = await through(app, { 'content-type': 'application/x-www-form-urlencoded' }, flat);
  assert.equal([...new URLSearchParams(seen.body.toString())], [...new URLSearchParams(flat)]);
});

test('Express 5: a JSON body the app changed before the relay is forwarded as changed', async () => {
  const stamp: ConnectMiddleware = (req, _res, next) => {
    (req as IncomingMessage & { body: Record<string, unknown> }).body.stamped = true;
    next();
  };
  const app = await gateway(express5, [express.json(), stamp]);
  const { seen } = await through(app, { 'content-type': 'application/json' }, '{"user":"ada"}');
  assert.equal(JSON.parse(seen.body.toString()), { user: 'ada', stamped: true });
});

test("Express 5, errors: 'next': a body that cannot be rebuilt goes to the app's error handler", async () => {
  const app = await gateway(express5, [readsMultipart], { connect: { errors: 'next' } });
  const refused = await fetchRaw(`${app.url}/auth/upload`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: multipart });
  assert.is(refused.status, 500);
  assert.is(refused.headers['x-handled-by'], 'app');
  assert.is(JSON.parse(refused.text).code, 'ERR_BODY_CONSUMED');
});

const multipart = '--x\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue\r\n--x--\r\n';

/** A multipart parser's footprint: it reads the stream and leaves fields in req.body. */
function readsMultipart(req: IncomingMessage, _res: ServerResponse, next: (error?: Error) => void): void {
  if (!String(req.headers['content-type']).startsWith('multipart/')) {
    next();
    return;
  }
  req.resume();
  req.on('end', () => {
    (req as IncomingMessage & { body: unknown }).body = { field: 'value' };
    next();
  });
}

test.run();
