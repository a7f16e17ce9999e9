// Request headers an earlier middleware set, replaced or deleted on `req.headers` are what the
// upstream gets, as with http-proxy-middleware (http-proxy's setupOutgoing copies `req.headers`):
// an auth middleware that adds `x-user-id` and deletes the client's `Authorization` before the
// proxy is the common Express pattern. Untouched headers keep the client's lines; the relay's
// hop-by-hop, Connection, forwarding and Host rules still apply to what middleware set.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Relay } from '@relay/core';
import { fetchRaw, memoryLogger, sendRaw, startUpstream, type Upstream } from '@relay/testkit';
import { toConnect, type ConnectMiddleware } from '../src/index.js';
import { connect3, express5, frameworks } from './apps.js';

let upstream: Upstream;
const relays: Relay[] = [];

test.before(async () => {
  upstream = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ headers: req.headers, raw: req.rawHeaders }));
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

interface Seen {
  headers: Record<string, string | undefined>;
  raw: string[];
}

/** What the upstream received of the last request, once the relay answered 200 for it. */
function seenOf(response: string): Seen {
  assert.match(response, /^HTTP\/1\.1 200 /);
  const last = upstream.requests.at(-1)!;
  return { headers: last.headers as Seen['headers'], raw: last.rawHeaders };
}

/** The raw lines of one name, as [name, value] pairs in the order received. */
function linesOf(raw: string[], name: string): string[][] {
  const lines: string[][] = [];
  for (let index = 0; index < raw.length; index += 2) if (raw[index]!.toLowerCase() === name) lines.push([raw[index]!, raw[index + 1]!]);
  return lines;
}

/** What an auth middleware does before the proxy: the identity it found in, the client's token out. */
const authenticate: ConnectMiddleware = (req, _res, next) => {
  req.headers['x-user-id'] = '42';
  req.headers['x-tenant'] = 'acme';
  delete req.headers.authorization;
  next();
};

for (const framework of frameworks) {
  test(`${framework.name}: headers an earlier middleware set or deleted on req.headers reach the upstream as changed`, async () => {
    const relay = await startedRelay();
    const app = await framework.start({ before: [authenticate], mounts: [['/api', toConnect(relay)]] });
    try {
      const response = await fetchRaw(`${app.url}/api/orders`, { headers: { authorization: 'Bearer client-secret', 'x-tenant': 'spoofed' } });
      assert.is(response.status, 200);
      const seen = (JSON.parse(response.text) as Seen).headers;
      assert.is(seen['x-user-id'], '42', 'a header the middleware added');
      assert.is(seen['x-tenant'], 'acme', 'a header the middleware replaced');
      assert.is(seen.authorization, undefined, 'a header the middleware deleted must not reach the upstream');
    } finally {
      await app.close();
    }
  });
}

test('headers the middleware left alone keep the client lines: order, spelling and repeats, singletons included', async () => {
  const relay = await startedRelay();
  // Reads every header (node builds req.headers) and adds one: nothing it did not touch may change.
  const reader: ConnectMiddleware = (req, _res, next) => {
    assert.is(req.headers['user-agent'], 'first');
    req.headers['x-user-id'] = '42';
    next();
  };
  const app = await express5.start({ before: [reader], mounts: [['/api', toConnect(relay)]] });
  try {
    const response = await sendRaw(
      app.port,
      'GET /api/x HTTP/1.1\r\nHost: app.test\r\nX-Trace: a\r\nCookie: a=1\r\nx-trace: b\r\nUser-Agent: first\r\nCookie: b=2\r\nUser-Agent: second\r\nConnection: close\r\n\r\n',
    );
    const { raw } = seenOf(response);
    assert.equal(linesOf(raw, 'x-trace'), [['x-trace', 'a'], ['x-trace', 'b']], 'a repeated list header is still two lines, in order');
    assert.equal(linesOf(raw, 'user-agent'), [['user-agent', 'first'], ['user-agent', 'second']], 'node shows only the first User-Agent: not an edit');
    assert.equal(linesOf(raw, 'cookie'), [['cookie', 'a=1; b=2']], 'cookies joined as the relay always joins them');
    assert.equal(linesOf(raw, 'x-user-id'), [['x-user-id', '42']]);
  } finally {
    await app.close();
  }
});

test('a changed or deleted repeated header replaces or removes every client line', async () => {
  const relay = await startedRelay();
  const edit: ConnectMiddleware = (req, _res, next) => {
    req.headers['x-trace'] = 'relay-chosen';
    delete req.headers['x-drop'];
    req.headers['x-list'] = ['one', 'two'];
    next();
  };
  const app = await connect3.start({ before: [edit], mounts: [['/api', toConnect(relay)]] });
  try {
    const response = await sendRaw(
      app.port,
      'GET /api/x HTTP/1.1\r\nHost: app.test\r\nX-Trace: a\r\nX-Drop: 1\r\nX-Trace: b\r\nX-Drop: 2\r\nConnection: close\r\n\r\n',
    );
    const { raw } = seenOf(response);
    assert.equal(linesOf(raw, 'x-trace'), [['x-trace', 'relay-chosen']]);
    assert.equal(linesOf(raw, 'x-drop'), []);
    assert.equal(linesOf(raw, 'x-list'), [['x-list', 'one'], ['x-list', 'two']], 'an array is one line per item');
  } finally {
    await app.close();
  }
});

test('middleware cannot set framing, hop-by-hop, forwarding or Host headers past the relay rules', async () => {
  const relay = await startedRelay();
  const inject: ConnectMiddleware = (req, _res, next) => {
    req.headers['transfer-encoding'] = 'chunked';
    req.headers['content-length'] = '5';
    req.headers.connection = 'keep-alive, x-user-id';
    req.headers.upgrade = 'websocket';
    req.headers['x-forwarded-for'] = '203.0.113.9';
    req.headers.host = 'other.test';
    // The client named X-Secret in Connection: its own X-Secret line is hop-by-hop, the app's is not.
    req.headers['x-secret'] = 'from-app';
    req.headers['x-user-id'] = '42';
    next();
  };
  const app = await express5.start({ before: [inject], mounts: [['/api', toConnect(relay)]] });
  try {
    const response = await sendRaw(app.port, 'GET /api/x HTTP/1.1\r\nHost: app.test\r\nConnection: close, x-secret\r\nX-Secret: 1\r\n\r\n');
    const { headers } = seenOf(response);
    assert.is(headers['transfer-encoding'], undefined);
    assert.is(headers['content-length'], undefined);
    assert.is(headers.upgrade, undefined);
    assert.is(headers['x-secret'], 'from-app', 'RFC 9110 §7.6.1 drops what was received under a Connection name, not what the app set');
    assert.is(headers['x-user-id'], '42', 'the Connection the app wrote lists nothing: only the client one counts');
    assert.is(headers['x-forwarded-for'], '127.0.0.1', 'an edge relay writes X-Forwarded-For itself');
    assert.is(headers.host, new URL(upstream.url).host, 'Host is the upstream one, as without preserveHost');
    assert.is(headers['x-forwarded-host'], 'other.test', 'the Host the app set is the one the client is taken to have used');
  } finally {
    await app.close();
  }
});

test('a middleware that sets req.headers["X-User-Id"] (mixed case) replaces the client\'s spoofed x-user-id', async () => {
  const relay = await startedRelay();
  // http-proxy sends req.headers through setHeader, case-insensitive: the later X-User-Id key wins.
  const authenticate: ConnectMiddleware = (req, _res, next) => {
    (req.headers as Record<string, string>)['X-User-Id'] = '42';
    next();
  };
  const app = await express5.start({ before: [authenticate], mounts: [['/api', toConnect(relay)]] });
  try {
    const response = await sendRaw(app.port, 'GET /api/orders HTTP/1.1\r\nHost: app.test\r\nx-user-id: 1\r\nConnection: close\r\n\r\n');
    assert.equal(linesOf(seenOf(response).raw, 'x-user-id'), [['x-user-id', '42']], 'the client\'s spoofed identity must not reach the upstream beside the app\'s');
  } finally {
    await app.close();
  }
});

test('a client cannot strip what the app set by naming it in Connection, and two Authorization lines are refused', async () => {
  const relay = await startedRelay();
  const app = await express5.start({ before: [authenticate], mounts: [['/api', toConnect(relay)]] });
  try {
    const response = await sendRaw(app.port, 'GET /api/x HTTP/1.1\r\nHost: app.test\r\nConnection: close, X-User-Id,x-tenant, x-mine\r\nX-Mine: 1\r\nAuthorization: Bearer t\r\n\r\n');
    const { headers } = seenOf(response);
    assert.is(headers['x-user-id'], '42', 'added by the app');
    assert.is(headers['x-tenant'], 'acme', 'added by the app');
    assert.is(headers['x-mine'], undefined, 'the client\'s own listed header is still hop-by-hop');
    // The app read the first Authorization (node keeps only it); an upstream could read the second.
    const reader: ConnectMiddleware = (req, _res, next) => (req.headers.authorization === 'Bearer valid' ? next() : _res.writeHead(401).end());
    const checked = await express5.start({ before: [reader], mounts: [['/api', toConnect(relay)]] });
    try {
      const twice = await sendRaw(checked.port, 'GET /api/x HTTP/1.1\r\nHost: app.test\r\nAuthorization: Bearer valid\r\nAuthorization: Bearer forged\r\nConnection: close\r\n\r\n');
      assert.match(twice, /^HTTP\/1\.1 400 /);
    } finally {
      await checked.close();
    }
  } finally {
    await app.close();
  }
});

test('a Host with CR LF or a value with LF set by the app is the app\'s fault: 500 and a log line, not a 400 that blames the client', async () => {
  const relay = await startedRelay();
  const edits: Array<(headers: Record<string, unknown>) => void> = [
    (headers) => (headers.host = 'tenant.test\r\nX-Injected: 1'),
    (headers) => (headers.host = ['a.test', 'b.test']),
    (headers) => (headers['x-user-id'] = '42\nX-Admin: 1'),
    (headers) => (headers['x user'] = '42'),
  ];
  for (const edit of edits) {
    const broken: ConnectMiddleware = (req, _res, next) => {
      edit(req.headers as Record<string, unknown>);
      next();
    };
    const app = await express5.start({ before: [broken], mounts: [['/api', toConnect(relay)]] });
    try {
      const before = upstream.requests.length;
      const logged = logger.lines.length;
      const response = await sendRaw(app.port, 'GET /api/orders HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n');
      assert.match(response, /^HTTP\/1\.1 500 /, String(edit));
      assert.is(upstream.requests.length, before, 'nothing reaches the upstream');
      assert.ok(logger.lines.slice(logged).some((line) => line.fields.code === 'ERR_INTERNAL' && /req\.headers/.test(line.message)), 'logged as the app\'s error');
    } finally {
      await app.close();
    }
  }
});

test.run();
