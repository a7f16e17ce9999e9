// http2Transport's idleTimeout against real h2c upstreams: a session without a stream for that long
// is closed (the upstream sees its socket close) and its target forgotten, a busy one is not, PINGs
// are not activity, a new request opens a new session; and the option's checks.
import { createServer as createH2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, fetchRaw, listenHttp2, optionErrorMessage, rangeErrorMessage, serveRelay, waitFor } from '@relay/testkit';
import { createRelay, http2Transport, parseTarget, type Http2TransportOptions, type Stage, type Target, type Transport } from '../src/index.js';
import type { BoundTransport } from '../src/types.js';
import type { Closers } from './http2-helpers.js';

const test = suite('http2Transport idleTimeout');

const closers: Closers = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

interface CountingUpstream {
  url: string;
  /** Sessions the upstream accepted. */
  opened: number;
  /** Of those, the ones whose socket closed. */
  socketsClosed: number;
  sessions: Http2Session[];
}

/** An h2c upstream answering `ok` (after `delayMs` for paths starting with /slow), counting its sessions and sockets. */
async function countingUpstream(delayMs = 0): Promise<CountingUpstream> {
  const server = createH2Server();
  const upstream: CountingUpstream = { url: '', opened: 0, socketsClosed: 0, sessions: [] };
  server.on('session', (session: Http2Session) => {
    upstream.opened++;
    upstream.sessions.push(session);
    session.socket.once('close', () => upstream.socketsClosed++);
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => {});
    const answer = () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('ok');
    };
    if (String(headers[':path']).startsWith('/slow')) setTimeout(answer, delayMs);
    else answer();
  });
  const listening = await listenHttp2(server);
  upstream.url = listening.url;
  closers.push(listening.close);
  return upstream;
}

/** `http2Transport(options)`, keeping its binding for a look at the per-target map. */
function watchedTransport(options: Http2TransportOptions): { transport: Transport; otherTargets: () => number } {
  const inner = http2Transport(options);
  let bound: BoundTransport | null = null;
  const transport: Transport = { ...inner, bind: (config) => (bound = inner.bind(config)) };
  return { transport, otherTargets: () => (bound as unknown as { otherTargets: number }).otherTargets };
}

async function relayTo(url: string, transport: Transport, stages: Stage[] = []) {
  const served = await serveRelay(createRelay({ targetBaseUrl: url, transport, stages }));
  closers.push(() => served.close());
  return served;
}

/** Sends paths under /b to `other` (as @relay/balance or a router sets `request.target`). */
function toOther(other: Target): Stage {
  return {
    name: 'to-other',
    wrap: (next) =>
      function toOther(request) {
        return next(request.path.startsWith('/b') ? { ...request, target: other } : request);
      },
  };
}

test('a session idle past idleTimeout is closed (the upstream sees its socket close); the next request opens a new one', async () => {
  const upstream = await countingUpstream();
  const relay = await relayTo(upstream.url, http2Transport({ idleTimeout: 300 }));
  assert.is((await fetchRaw(`${relay.url}/one`)).text, 'ok');
  assert.is((await fetchRaw(`${relay.url}/two`)).text, 'ok');
  assert.is(upstream.opened, 1, 'back-to-back requests share the session');
  assert.ok(await waitFor(() => upstream.socketsClosed === 1, 5000), 'the idle session was closed');
  const closedAt = Date.now();
  assert.ok(upstream.sessions[0]!.closed || upstream.sessions[0]!.destroyed);
  assert.is((await fetchRaw(`${relay.url}/three`)).text, 'ok');
  assert.is(upstream.opened, 2, 'a new session for the request after the close');
  assert.ok(Date.now() - closedAt < 2000);
});

test('a session with a stream open is not closed however long the stream lasts; it is once idle', async () => {
  const upstream = await countingUpstream(1200);
  const relay = await relayTo(upstream.url, http2Transport({ idleTimeout: 200 }));
  const slow = fetchRaw(`${relay.url}/slow`);
  await delay(700);
  assert.is(upstream.socketsClosed, 0, 'open while its stream is');
  assert.is((await slow).text, 'ok');
  assert.is(upstream.opened, 1);
  assert.ok(await waitFor(() => upstream.socketsClosed === 1, 5000), 'closed once idle');
});

test('each stream restarts the idle time: requests more often than idleTimeout keep the one session', async () => {
  const upstream = await countingUpstream();
  const relay = await relayTo(upstream.url, http2Transport({ idleTimeout: 500 }));
  for (let i = 0; i < 8; i++) {
    assert.is((await fetchRaw(`${relay.url}/r${i}`)).text, 'ok');
    await delay(150);
  }
  assert.is(upstream.opened, 1);
  assert.is(upstream.socketsClosed, 0);
});

test('PINGs are not activity: a pinged session still closes after idleTimeout', async () => {
  const upstream = await countingUpstream();
  const relay = await relayTo(upstream.url, http2Transport({ idleTimeout: 400, pingInterval: 50 }));
  await fetchRaw(`${relay.url}/p`);
  let pings = 0;
  upstream.sessions[0]!.on('ping', () => pings++);
  assert.ok(await waitFor(() => upstream.socketsClosed === 1, 5000), `closed after ${pings} pings`);
  assert.ok(pings >= 2, `pings while idle: ${pings}`);
});

test('idleTimeout 0: an idle session stays open', async () => {
  const upstream = await countingUpstream();
  const relay = await relayTo(upstream.url, http2Transport({ idleTimeout: 0 }));
  await fetchRaw(`${relay.url}/p`);
  await delay(600);
  assert.is(upstream.socketsClosed, 0);
  assert.is((await fetchRaw(`${relay.url}/q`)).text, 'ok');
  assert.is(upstream.opened, 1);
});

test('another target (request.target, as behind @relay/balance): its idle session closes and the target is forgotten; a later request reopens it', async () => {
  const main = await countingUpstream();
  const other = await countingUpstream();
  const { transport, otherTargets } = watchedTransport({ idleTimeout: 300 });
  const relay = await relayTo(main.url, transport, [toOther(parseTarget(other.url))]);
  assert.is((await fetchRaw(`${relay.url}/b1`)).text, 'ok');
  assert.is((await fetchRaw(`${relay.url}/a1`)).text, 'ok');
  assert.is(otherTargets(), 1);
  assert.ok(await waitFor(() => other.socketsClosed === 1 && main.socketsClosed === 1, 5000), 'both idle sessions closed');
  assert.ok(await waitFor(() => otherTargets() === 0, 1000), `targets kept: ${otherTargets()}`);
  assert.is((await fetchRaw(`${relay.url}/b2`)).text, 'ok');
  assert.is(other.opened, 2);
  assert.is(otherTargets(), 1);
});

test('targets that come and go (DNS churn): the per-target sessions do not pile up', async () => {
  const main = await countingUpstream();
  const upstreams = await Promise.all(Array.from({ length: 5 }, () => countingUpstream()));
  let current: Target = parseTarget(upstreams[0]!.url);
  const churn: Stage = {
    name: 'churn',
    wrap: (next) =>
      function churn(request) {
        return next({ ...request, target: current });
      },
  };
  const { transport, otherTargets } = watchedTransport({ idleTimeout: 200 });
  const relay = await relayTo(main.url, transport, [churn]);
  for (const upstream of upstreams) {
    current = parseTarget(upstream.url);
    assert.is((await fetchRaw(`${relay.url}/x`)).text, 'ok');
  }
  assert.ok(otherTargets() >= 1);
  assert.ok(await waitFor(() => upstreams.every((upstream) => upstream.socketsClosed === 1), 5000), 'every left target’s session closed');
  assert.ok(await waitFor(() => otherTargets() === 0, 1000), `targets kept: ${otherTargets()}`);
});

test('a request to a new target that fails before it asks for a stream leaves no target behind', async () => {
  const main = await countingUpstream();
  const other = await countingUpstream();
  const badHeader: Stage = {
    name: 'bad-header',
    wrap: (next) =>
      function badHeader(request) {
        return next({ ...request, target: parseTarget(other.url), headers: { ...request.headers, 'bad\u0001name': 'x' } });
      },
  };
  const { transport, otherTargets } = watchedTransport({ idleTimeout: 0 });
  const relay = await relayTo(main.url, transport, [badHeader]);
  assert.ok((await fetchRaw(`${relay.url}/x`)).status >= 500);
  assert.is(other.opened, 0);
  assert.ok(await waitFor(() => otherTargets() === 0, 1000), `targets kept: ${otherTargets()}`);
});

test('idleTimeout is checked as the HTTP/1 transports check it', () => {
  assert.match(optionErrorMessage(() => http2Transport({ idleTimout: 1000 } as Http2TransportOptions)), /unknown option "idleTimout" \(did you mean "idleTimeout"\?/);
  assert.match(rangeErrorMessage(() => http2Transport({ idleTimeout: -1 })), /^idleTimeout must be a finite number >= 0, got -1/);
  assert.throws(() => http2Transport({ idleTimeout: Number.NaN }), (error: Error) => error instanceof TypeError && /^idleTimeout must be a number/.test(error.message));
  assert.throws(() => http2Transport({ idleTimeout: '1000' as unknown as number }), (error: Error) => error instanceof TypeError && /^idleTimeout/.test(error.message));
  assert.match(rangeErrorMessage(() => http2Transport({ idleTimeout: 30 * 86_400_000 })), /^idleTimeout must be at most 2147483647 ms/);
  assert.not.throws(() => http2Transport({ idleTimeout: 0 }));
});

test.run();
