// relay.fetch as a Next.js route handler or a Web-standard runtime uses it, beyond fetch.test.ts:
// an AbortSignal shared by many calls, a Request whose body was already read, a Request body the
// relay stops reading after an early answer, the `address` option, and a non-ASCII mount path.
import { getEventListeners } from 'node:events';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delay, echoHandler, memoryLogger, startUpstream, waitFor } from '@relay/testkit';
import { createRelay } from '../src/index.js';

test('relay.fetch: a finished call leaves no abort listener on the Request’s signal (one long-lived signal shared by many calls)', async () => {
  // A server-wide shutdown AbortController passed to every Request, or one GET Request relayed
  // again and again (a health probe), is a common pattern; undici's own fetch removes its listener
  // when the fetch ends (nodejs/undici#939). Each listener left keeps its FetchExchange (request,
  // client, pipeline state) alive for as long as the signal lives, and Node warns of an
  // EventTarget leak after 10. (`new Request(url, { signal })` follows `signal` with a signal of
  // its own, `request.signal`: that one is the relay's to listen to; the listener undici keeps on
  // the shared signal until the Request is collected is undici's.)
  const upstream = await startUpstream((req, res, seen) => echoHandler(req, res, seen));
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  const shared = new AbortController();
  const probe = new Request('http://gw/health', { signal: shared.signal });
  const requests: Request[] = [];
  for (let index = 0; index < 12; index++) {
    const request = new Request(`http://gw/item/${index}`, { signal: shared.signal });
    requests.push(request);
    for (const one of [request, probe]) {
      const response = await relay.fetch(one);
      assert.is(response.status, 200);
      await response.text();
    }
  }
  assert.ok(await waitFor(() => relay.inFlight === 0, 2000));
  const left = [probe, ...requests].reduce((sum, request) => sum + getEventListeners(request.signal, 'abort').length, 0);
  // A call whose Response is still unread is still served: the signal still aborts it.
  const open = new Request('http://gw/open', { signal: shared.signal });
  const pending = await relay.fetch(open);
  const listening = getEventListeners(open.signal, 'abort').length;
  await pending.text();
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
  assert.is(left, 0, `${left} abort listeners are still on the Requests' signals after every call ended`);
  assert.is(listening, 1, 'the signal of a call still streaming its answer is listened to');
});

test('relay.fetch: a Request whose body was already read answers 500 ERR_BODY_CONSUMED with an error log, as every other door does, instead of rejecting', async () => {
  // A Hono validator (`await c.req.json()`) or a Next.js handler that read `await request.json()`
  // before `relay.fetch(request)`. relay.handle, toConnect and the Koa door answer 500
  // ERR_BODY_CONSUMED and log the cause; relay.fetch rejects with Node's internal
  // "Invalid state: ReadableStream is locked" (no log line, nothing that names the cause), while its
  // own code promises "an error Response, never a rejection".
  let reached = false;
  const upstream = await startUpstream((req, res, seen) => {
    reached = true;
    echoHandler(req, res, seen);
  });
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger });
  const request = new Request('http://gw/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":1}' });
  await request.json(); // what the app's middleware did
  let outcome: string;
  try {
    const response = await relay.fetch(request);
    outcome = `${response.status} ${await response.text()}`;
  } catch (error) {
    outcome = `rejected: ${(error as Error).message}`;
  }
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
  assert.ok(outcome.startsWith('500') && outcome.includes('ERR_BODY_CONSUMED'), `relay.fetch answered: ${outcome}`);
  assert.not.ok(reached, 'the upstream got nothing');
  assert.ok(
    logger.lines.some((line) => line.level === 'error' && line.fields.code === 'ERR_BODY_CONSUMED'),
    'an error log line names the cause',
  );
});

test('relay.fetch: a Request body stream the relay stops reading (the upstream answered early) is cancelled, so its source is released', async () => {
  // An upload the upstream refuses at once (413, 401): the answer comes back, the exchange ends, but
  // the Request's ReadableStream stays locked by the relay and is never cancelled: its source (a file
  // handle, a generator, the client's incoming stream in a runtime) is held open forever.
  const upstream = await startUpstream(
    (_req, res) => {
      res.writeHead(413, { connection: 'close', 'content-type': 'text/plain' });
      res.end('too large');
    },
    { streaming: true },
  );
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(new Uint8Array(16 * 1024));
      return delay(5);
    },
    cancel() {
      cancelled = true;
    },
  });
  const response = await relay.fetch(new Request('http://gw/upload', { method: 'POST', body, duplex: 'half' } as RequestInit));
  assert.is(response.status, 413);
  assert.is(await response.text(), 'too large');
  assert.ok(await waitFor(() => relay.inFlight === 0, 2000), 'the exchange ended');
  const released = await waitFor(() => cancelled, 2000);
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
  assert.ok(released, 'the Request body stream was cancelled once the relay no longer needed it');
});

test('relay.fetch: `address` is checked like the option keys: a value that is not an IP address throws a TypeError instead of being written into X-Forwarded-For', async () => {
  // relay.fetch throws for `{ adress }` ("a programming error"), but takes any value of `address`:
  // a number or a free-form string goes upstream as the client's X-Forwarded-For, and a CR/LF in it
  // surfaces only per request as a 500 ERR_INTERNAL.
  const seen: string[] = [];
  const upstream = await startUpstream((req, res, record) => {
    seen.push(String(req.headers['x-forwarded-for']));
    echoHandler(req, res, record);
  });
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  const outcomes: string[] = [];
  for (const address of [42 as unknown as string, 'not an address', '10.0.0.1, 203.0.113.9', '1.2.3.4\r\nx-evil: 1']) {
    try {
      const response = await relay.fetch(new Request('http://gw/who'), { address });
      outcomes.push(`${JSON.stringify(address)} → ${response.status}`);
      await response.text();
    } catch (error) {
      if (!(error instanceof TypeError)) outcomes.push(`${JSON.stringify(address)} → ${(error as Error).name}`);
    }
  }
  // A valid address still works, IPv4 or IPv6; no address at all is unknown, as before.
  for (const address of ['203.0.113.7', '2001:db8::1', undefined]) {
    const ok = await relay.fetch(new Request('http://gw/who'), address === undefined ? {} : { address });
    assert.is(ok.status, 200);
    await ok.text();
  }
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
  assert.equal(outcomes, [], `accepted: ${outcomes.join('; ')}; upstream saw X-Forwarded-For ${JSON.stringify(seen)}`);
  assert.equal(seen, ['203.0.113.7', '2001:db8::1', 'undefined'], 'only the valid addresses went upstream');
});

test('relay.fetch: a non-ASCII mountPath (/café) serves the percent-encoded /caf%C3%A9/… clients send, never a 404 to everything', async () => {
  // A Request's URL is percent-encoded (`/caf%C3%A9/x`, as every HTTP client sends it), the mount
  // path is compared as written: createRelay accepts `mountPath: '/café'` and no request ever matches.
  const upstream = await startUpstream((req, res, seen) => echoHandler(req, res, seen));
  let relay;
  try {
    relay = createRelay({ targetBaseUrl: upstream.url, mountPath: '/café', logger: memoryLogger() });
  } catch (error) {
    await upstream.close();
    assert.instance(error, TypeError);
    return;
  }
  const response = await relay.fetch(new Request('http://gw/café/menu?q=1'));
  const text = await response.text();
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
  assert.is(response.status, 200, `GET /café/menu?q=1 under mountPath '/café': ${response.status} ${text.trim()}`);
  assert.is(JSON.parse(text).url, '/menu?q=1');
  assert.is(JSON.parse(text).headers['x-forwarded-prefix'], '/caf%C3%A9', 'the prefix goes upstream as the client sent it');
});

test('relay.fetch: a non-ASCII upstreamPrefix (/menü) reaches the upstream as UTF-8 escapes, not as Latin-1 bytes', async () => {
  const upstream = await startUpstream((req, res, seen) => echoHandler(req, res, seen));
  const relay = createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/menü', logger: memoryLogger() });
  const response = await relay.fetch(new Request('http://gw/today'));
  const answer = JSON.parse(await response.text());
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
  assert.is(answer.url, '/men%C3%BC/today');
});

test('relay.fetch: a Request with a body the relay refuses before reading it (outside mountPath) has its body stream cancelled', async () => {
  const upstream = await startUpstream((req, res, seen) => echoHandler(req, res, seen));
  const relay = createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', logger: memoryLogger() });
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull: (controller) => controller.enqueue(new Uint8Array(1024)),
    cancel() {
      cancelled = true;
    },
  });
  const response = await relay.fetch(new Request('http://gw/elsewhere', { method: 'POST', body, duplex: 'half' } as RequestInit));
  assert.is(response.status, 404);
  await response.text();
  const released = await waitFor(() => cancelled, 2000);
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
  assert.ok(released, 'the body stream of a refused Request was cancelled');
});

test('relay.fetch: a body with a Content-Length the upstream answers early is cancelled too', async () => {
  // With a length the relay reads the stream through its length guard: ending the exchange must
  // reach the Web stream under it.
  const upstream = await startUpstream(
    (_req, res) => {
      res.writeHead(401, { connection: 'close', 'content-type': 'text/plain' });
      res.end('who are you');
    },
    { streaming: true },
  );
  const relay = createRelay({ targetBaseUrl: upstream.url, logger: memoryLogger() });
  let cancelled = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(new Uint8Array(16 * 1024));
      return delay(5);
    },
    cancel() {
      cancelled = true;
    },
  });
  const headers = { 'content-length': String(64 * 1024 * 1024) };
  const response = await relay.fetch(new Request('http://gw/upload', { method: 'POST', headers, body, duplex: 'half' } as RequestInit));
  assert.is(response.status, 401);
  assert.is(await response.text(), 'who are you');
  const released = await waitFor(() => cancelled, 2000);
  await relay.shutdown({ timeout: 500 });
  await upstream.close();
  assert.ok(released, 'the Request body stream was cancelled once the relay no longer needed it');
});

test.run();
