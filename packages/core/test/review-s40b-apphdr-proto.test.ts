// Review s40b: a client header named `__proto__` (a valid token; nginx, Envoy and HAProxy pass it)
// lands on a plain-object HeaderRecord in readRequestHead: `headers['__proto__']` is
// Object.prototype, `existing.push` throws, and every such request is a logged 500 ERR_INTERNAL.
// appRawHeaders (route.headers) reads `req.headers['__proto__']` the same way and makes it "[object Object]".
import { createServer, type Server } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, listen, memoryLogger, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { createRelay, type Relay } from '../src/index.js';

let upstream: Upstream;
const relays: Relay[] = [];
const servers: Server[] = [];

test.before(async () => {
  upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream'));
});

test.after(async () => {
  await Promise.all(servers.map((server) => close(server)));
  await Promise.all(relays.map((relay) => relay.shutdown()));
  await upstream.close();
});

async function front(serve: (relay: Relay, req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<number> {
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  await relay.startup();
  relays.push(relay);
  const server = createServer((req, res) => serve(relay, req, res));
  servers.push(server);
  return Number(new URL(await listen(server)).port);
}

function valuesOf(raw: string[], name: string): string[] {
  const values: string[] = [];
  for (let index = 0; index < raw.length; index += 2) if (raw[index]!.toLowerCase() === name) values.push(raw[index + 1]!);
  return values;
}

const request = 'GET /orders HTTP/1.1\r\nHost: a.test\r\n__proto__: client-value\r\nConnection: close\r\n\r\n';

test('relay.handle: a client header named __proto__ is relayed, not a 500 ERR_INTERNAL', async () => {
  const port = await front((relay, req, res) => relay.handle(req, res));
  const before = upstream.requests.length;
  const response = await sendRaw(port, request);
  assert.match(response, /^HTTP\/1\.1 200 /);
  assert.is(upstream.requests.length, before + 1);
  assert.equal(valuesOf(upstream.requests.at(-1)!.rawHeaders, '__proto__'), ['client-value']);
});

test('relay.dispatch with route.headers: a client __proto__ header is never sent with a value the relay made up', async () => {
  const port = await front((relay, req, res) => {
    req.headers['x-user-id'] = '42';
    relay.dispatch(req, res, { path: req.url!, mountPath: '', headers: req.headers });
  });
  const before = upstream.requests.length;
  const response = await sendRaw(port, request);
  assert.match(response, /^HTTP\/1\.1 200 /);
  assert.is(upstream.requests.length, before + 1);
  // The client's line (as relay.handle sends it) or none (the app never saw it): never "[object Object]".
  for (const value of valuesOf(upstream.requests.at(-1)!.rawHeaders, '__proto__')) assert.is(value, 'client-value');
});

test.run();
