// Review s40b (commit cb32e9b, req.headers edits sent upstream): what the upstream receives must be
// what the app left in req.headers, never a client line the app's edit did not replace, and never
// a value the relay made up for a client header.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay } from '@relay/core';
import { memoryLogger, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { toConnect, type ConnectMiddleware } from '../src/index.js';
import { express5 } from './apps.js';

let upstream: Upstream;
const relays: Relay[] = [];

test.before(async () => {
  upstream = await startUpstream((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream');
  });
});

test.after(async () => {
  await Promise.all(relays.map((relay) => relay.shutdown()));
  await upstream.close();
});

const logger = memoryLogger();

async function startedRelay(): Promise<Relay> {
  const relay = createRelay({ targetBaseUrl: upstream.url, logger });
  await relay.startup();
  relays.push(relay);
  return relay;
}

function linesOf(raw: string[], name: string): string[] {
  const values: string[] = [];
  for (let index = 0; index < raw.length; index += 2) if (raw[index]!.toLowerCase() === name) values.push(raw[index + 1]!);
  return values;
}

test('an auth middleware that sets req.headers["X-User-Id"] (mixed case) replaces the client\'s spoofed x-user-id', async () => {
  const relay = await startedRelay();
  // http-proxy sends req.headers through setHeader, case-insensitive: the later X-User-Id key wins.
  const authenticate: ConnectMiddleware = (req, _res, next) => {
    (req.headers as Record<string, string>)['X-User-Id'] = '42';
    next();
  };
  const app = await express5.start({ before: [authenticate], mounts: [['/api', toConnect(relay)]] });
  try {
    const before = upstream.requests.length;
    const response = await sendRaw(app.port, 'GET /api/orders HTTP/1.1\r\nHost: app.test\r\nx-user-id: 1\r\nConnection: close\r\n\r\n');
    assert.match(response, /^HTTP\/1\.1 200 /);
    assert.is(upstream.requests.length, before + 1);
    const raw = upstream.requests.at(-1)!.rawHeaders;
    assert.equal(linesOf(raw, 'x-user-id'), ['42'], 'the client\'s spoofed identity must not reach the upstream beside the app\'s');
  } finally {
    await app.close();
  }
});

test('a Host with CR LF set by the app is the app\'s fault: 500, not a 400 that blames the client', async () => {
  const relay = await startedRelay();
  const broken: ConnectMiddleware = (req, _res, next) => {
    req.headers.host = 'tenant.test\r\nX-Injected: 1';
    next();
  };
  const app = await express5.start({ before: [broken], mounts: [['/api', toConnect(relay)]] });
  try {
    const before = upstream.requests.length;
    const response = await sendRaw(app.port, 'GET /api/orders HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n');
    assert.is(upstream.requests.length, before, 'nothing reaches the upstream');
    // The same app setting X-Anything to a CR LF value gets 500: the client's request was valid.
    assert.match(response, /^HTTP\/1\.1 500 /);
  } finally {
    await app.close();
  }
});

test.run();
