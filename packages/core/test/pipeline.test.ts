import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, serveRelay, startUpstream } from '@relay/testkit';
import { ClientInfo, compose, createRelay, stageContext, type Handler, type ProxyRequest, type ProxyResponse, type Stage, type StageContext } from '../src/index.js';

function fakeRequest(): ProxyRequest {
  return {
    method: 'GET',
    path: '/x',
    headers: {},
    body: null,
    replayBody: null,
    attempt: 1,
    client: new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/x' }),
  };
}

function tracer(name: string, log: string[], wraps: { count: number }): Stage {
  return {
    name,
    wrap(next: Handler): Handler {
      wraps.count++;
      return async function traced(request) {
        log.push(`${name}:request`);
        const response = await next(request);
        log.push(`${name}:response`);
        return response;
      };
    },
  };
}

test('stages[0] is outermost: it sees the request first and the response last; wrap runs once', async () => {
  const log: string[] = [];
  const wraps = { count: 0 };
  const inner: Handler = async () => {
    log.push('transport');
    return { status: 200, statusMessage: '', headers: {}, body: null };
  };
  const handler = compose([tracer('a', log, wraps), tracer('b', log, wraps)], inner);
  await handler(fakeRequest());
  await handler(fakeRequest());
  assert.is(wraps.count, 2, 'each stage wrapped once, not per request');
  assert.equal(log.slice(0, 5), ['a:request', 'b:request', 'transport', 'b:response', 'a:response']);
});

test('a stage may call next more than once, each attempt with its own request value', async () => {
  const seen: ProxyRequest[] = [];
  const inner: Handler = async (request) => {
    seen.push(request);
    return { status: seen.length < 3 ? 503 : 200, statusMessage: '', headers: {}, body: null };
  };
  const twice: Stage = {
    name: 'again',
    wrap: (next) =>
      async function again(request) {
        let response: ProxyResponse = await next(request);
        for (let attempt = 2; response.status === 503 && attempt <= 3; attempt++) {
          response = await next({ ...request, attempt, headers: { ...request.headers } });
        }
        return response;
      },
  };
  const response = await compose([twice], inner)(fakeRequest());
  assert.is(response.status, 200);
  assert.equal(seen.map((r) => r.attempt), [1, 2, 3]);
  assert.is.not(seen[0], seen[1]);
});

test('a stage is usable alone with a fake next and no sockets', async () => {
  const stamp: Stage = {
    name: 'stamp',
    wrap: (next) =>
      function stamp(request) {
        request.headers['x-stamp'] = 'on';
        return next(request);
      },
  };
  let received: ProxyRequest | null = null;
  await stamp.wrap(async (request) => {
    received = request;
    return { status: 204, statusMessage: '', headers: {}, body: Readable.from([]) };
  }, stageContext())(fakeRequest());
  assert.is(received!.headers['x-stamp'], 'on');
});

test('wrap receives the relay logger and target', () => {
  let seen: unknown = null;
  const probe: Stage = { name: 'probe', wrap: (next, context) => ((seen = context), next) };
  const relay = createRelay({ targetBaseUrl: 'http://127.0.0.1:9/base', stages: [probe] });
  assert.is((seen as { target: unknown }).target, relay.target);
  assert.is((seen as { logger: unknown }).logger, relay.logger);
});

test("wrap receives the relay's TLS settings, read-only; {} without any, and from stageContext()", () => {
  const contexts: StageContext[] = [];
  const probe: Stage = { name: 'probe', wrap: (next, context) => (contexts.push(context), next) };
  const ca = '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n';
  createRelay({ targetBaseUrl: 'https://127.0.0.1:9', tls: { ca, servername: 'api.internal', rejectUnauthorized: true }, stages: [probe] });
  createRelay({ targetBaseUrl: 'http://127.0.0.1:9', stages: [probe] });
  assert.equal(contexts[0]!.tls, { ca, servername: 'api.internal', rejectUnauthorized: true });
  assert.ok(Object.isFrozen(contexts[0]!.tls), 'a stage cannot change what the transport uses');
  assert.equal(contexts[1]!.tls, {});
  assert.equal(stageContext().tls, {});
  assert.equal(stageContext({ tls: { servername: 'x' } }).tls, { servername: 'x' });
});

test('stageContext() keeps logQuery (false unless given) and names the nearest key for an unknown one', () => {
  assert.is(stageContext().logQuery, false);
  assert.is(stageContext({ logQuery: true }).logQuery, true);
  assert.throws(() => stageContext({ logQuerry: true } as Partial<StageContext>), /logQuery/);
});

test("stageContext() checks its timeouts as createRelay does: past node's timer limit is a RangeError naming the phase", () => {
  assert.throws(() => stageContext({ timeouts: { connect: 1000, read: 2 ** 31, write: 1000, pool: 1000 } }), (error: Error) => error instanceof RangeError && /timeouts\.read/.test(error.message));
  assert.is(stageContext({ timeouts: { connect: 1, read: 2 ** 31 - 1, write: 3, pool: 4 } }).timeouts.read, 2 ** 31 - 1);
});

test('a stage can answer before the upstream, through a real relay', async () => {
  const upstream = await startUpstream();
  const guard: Stage = {
    name: 'guard',
    wrap: (next) =>
      async function guard(request) {
        if (request.headers.authorization === undefined) {
          return { status: 401, statusMessage: '', headers: { 'content-type': 'text/plain' }, body: Readable.from(['login first']) };
        }
        return next(request);
      },
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [guard] }));
  const denied = await fetchRaw(`${served.url}/secret`);
  assert.is(denied.status, 401);
  assert.is(denied.text, 'login first');
  const allowed = await fetchRaw(`${served.url}/secret`, { headers: { authorization: 'Bearer t' } });
  assert.is(allowed.status, 200);
  assert.is(upstream.requests.length, 1);
  await served.close();
  await upstream.close();
});

test('stages that are not stages are refused when the relay is built', () => {
  assert.throws(() => createRelay({ targetBaseUrl: 'http://127.0.0.1:1', stages: [{} as Stage] }), /stages\[0\]/);
  assert.throws(() => createRelay({ targetBaseUrl: 'http://127.0.0.1:1', stages: [{ name: 'x', wrap: () => 1 } as unknown as Stage] }), /"x"/);
});

test.run();
