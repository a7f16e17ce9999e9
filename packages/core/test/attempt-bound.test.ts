// AttemptBound: a stage's cut of its own attempts (retry({ deadline }) uses it). The cut stops the
// attempt in flight at its transport (through a stage that spreads the request on its way), leaves
// the client in place so the stage can answer, and an attempt still in an inner stage is cut before
// it is sent; a cut never reaches an attempt of another bound, such as a later run's. Every transport:
// http, got, undici, http2, in-memory (the WebSocket transport's handshakes: packages/ws/test/handshake-cut).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, delay, fetchRaw, listen, listenHttp2, serveRelay, waitFor } from '@relay/testkit';
import { AttemptBound, ClientInfo, createRelay, http2Transport, inMemoryTransport, RelayError, toRelayError, type ProxyRequest, type Stage, type Transport } from '../src/index.js';
import type { AbortHandler } from '../src/transport/index.js';
import { gotTransport } from '../src/transport/got.js';
import { undiciTransport } from '../src/transport/undici.js';

/** An upstream that never answers: it counts the requests it got and those that closed unanswered. */
interface HangingUpstream {
  received: number;
  closed: number;
  readonly listener: (req: IncomingMessage | http2.Http2ServerRequest, res: ServerResponse | http2.Http2ServerResponse) => void;
}

function hangingUpstream(): HangingUpstream {
  const upstream: HangingUpstream = {
    received: 0,
    closed: 0,
    listener: (_req, res) => {
      upstream.received++;
      res.on('close', () => upstream.closed++);
    },
  };
  return upstream;
}

/** A relay in front of `upstream` through the transport `name`, and what closes both. */
async function relayOver(name: string, upstream: HangingUpstream, stages: Stage[]): Promise<{ url: string; close: () => Promise<void> }> {
  if (name === 'memory') {
    const served = await serveRelay(createRelay({ targetBaseUrl: 'http://upstream', transport: inMemoryTransport(upstream.listener), stages }));
    return { url: served.url, close: () => served.close() };
  }
  let url: string;
  let closeUpstream: () => Promise<void>;
  if (name === 'http2') {
    const server = await listenHttp2(http2.createServer(upstream.listener));
    url = server.url;
    closeUpstream = () => server.close();
  } else {
    const server = createServer(upstream.listener);
    url = await listen(server);
    closeUpstream = () => {
      server.closeAllConnections();
      return close(server);
    };
  }
  const transports: Record<string, () => Transport | undefined> = {
    http: () => undefined,
    got: () => gotTransport(),
    undici: () => undiciTransport(),
    http2: () => http2Transport(),
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: url, timeout: { read: 5000 }, transport: transports[name]!(), stages }));
  return {
    url: served.url,
    close: async () => {
      await served.close();
      await closeUpstream();
    },
  };
}

/**
 * Bounds each attempt to `ms`, as `retry({ deadline })` does, and answers the cut itself: the
 * client stays, so its answer reaches it. The body says what the stage saw.
 */
function cutAfter(ms: number): Stage {
  return {
    name: 'cut-after',
    wrap: (next) =>
      async function cutAfterStage(request: ProxyRequest) {
        const bound = new AttemptBound(request);
        const timer = setTimeout(() => bound.cut(new RelayError('ERR_DEADLINE', `cut after ${ms} ms`)), ms);
        try {
          return await next({ ...request, bound });
        } catch (error) {
          const text = `${toRelayError(error).code} inFlight=${String(bound.cutInFlight)} clientAborted=${String(request.client.aborted)}`;
          return { status: 200, statusMessage: '', headers: { 'content-length': String(text.length) }, body: Readable.from([text]) };
        } finally {
          clearTimeout(timer);
        }
      },
  };
}

/** An inner stage that holds each attempt `ms`, then passes on a spread copy (the idiom stages use). */
function holdAndSpread(ms: number): Stage {
  return {
    name: 'hold-and-spread',
    wrap: (next) =>
      async function holdAndSpreadStage(request: ProxyRequest) {
        if (ms > 0) await delay(ms);
        return next({ ...request, headers: { ...request.headers, 'x-spread': '1' } });
      },
  };
}

for (const name of ['http', 'got', 'undici', 'http2', 'memory']) {
  test(`${name}: a cut stops the attempt in flight (through a stage that spreads the request); the client stays and gets the stage's answer`, async () => {
    const upstream = hangingUpstream();
    const relay = await relayOver(name, upstream, [cutAfter(200), holdAndSpread(0)]);
    try {
      const response = await fetchRaw(`${relay.url}/items`);
      assert.is(`${response.status} ${response.text}`, '200 ERR_DEADLINE inFlight=true clientAborted=false');
      assert.is(upstream.received, 1);
      assert.ok(await waitFor(() => upstream.closed === 1, 2000), 'the upstream request was left open after the cut');
    } finally {
      await relay.close();
    }
  });

  test(`${name}: an attempt still in an inner stage when it is cut is never sent`, async () => {
    const upstream = hangingUpstream();
    const relay = await relayOver(name, upstream, [cutAfter(100), holdAndSpread(300)]);
    try {
      const response = await fetchRaw(`${relay.url}/items`);
      assert.is(`${response.status} ${response.text}`, '200 ERR_DEADLINE inFlight=false clientAborted=false');
      await delay(100);
      assert.is(upstream.received, 0, 'the cut attempt went upstream');
    } finally {
      await relay.close();
    }
  });
}

/** A client record and an attempt of it, as a transport would hold them. */
function fakeAttempt(client: ClientInfo, bound?: AttemptBound): { request: ProxyRequest; handler: AbortHandler; reasons: string[] } {
  const request: ProxyRequest = { method: 'GET', path: '/', headers: {}, body: null, replayBody: null, attempt: 1, bound, client };
  const reasons: string[] = [];
  return { request, reasons, handler: { request, onClientAbort: (reason) => reasons.push(reason.code) } };
}

test('a cut reaches only its own bound\'s attempts: a later run\'s registered attempt, and one an earlier cut missed, stay', () => {
  const client = new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/' });
  const root = fakeAttempt(client).request;
  const first = new AttemptBound(root);
  const held = fakeAttempt(client, first);
  first.cut(new RelayError('ERR_DEADLINE', 'first run'));
  assert.is(first.cutInFlight, false, 'nothing of the first run was registered');
  // A later run (an outer stage tries again): its attempt registers first, then the held one reaches its transport.
  const second = new AttemptBound(root);
  const later = fakeAttempt(client, second);
  client.setAbortHandler(later.handler);
  client.setAbortHandler(held.handler);
  assert.equal(held.reasons, ['ERR_DEADLINE'], 'the held attempt is cut when it registers');
  assert.equal(later.reasons, [], 'the later run\'s attempt was cut');
  assert.is(second.reason, null);
  // The later run's attempt is still the registered one: its own cut, and the client's leaving, reach it.
  second.cut(new RelayError('ERR_DEADLINE', 'second run'));
  assert.equal(later.reasons, ['ERR_DEADLINE']);
  assert.is(second.cutInFlight, true);
  assert.is(client.aborted, false, 'a cut leaves the client in place');
});

test('a bound made within another is cut with it; a handler of no bound, and the client, are not', () => {
  const client = new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/' });
  const outer = new AttemptBound(fakeAttempt(client).request);
  const inner = new AttemptBound(fakeAttempt(client, outer).request);
  const attempt = fakeAttempt(client, inner);
  client.setAbortHandler(attempt.handler);
  outer.cut(new RelayError('ERR_DEADLINE', 'outer'));
  assert.equal(attempt.reasons, ['ERR_DEADLINE']);
  assert.is(inner.reason?.message, 'outer');
  assert.is(inner.cutInFlight, true);
  const unbound = fakeAttempt(client);
  client.setAbortHandler(unbound.handler);
  outer.cut(new RelayError('ERR_DEADLINE', 'again'));
  new AttemptBound(unbound.request).cut(new RelayError('ERR_DEADLINE', 'a bound it does not carry'));
  assert.equal(unbound.reasons, []);
  client.abort();
  assert.equal(unbound.reasons, ['ERR_CLIENT_ABORTED'], 'the client\'s leaving still reaches the registered attempt');
});

test.run();
