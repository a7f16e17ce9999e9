import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compose, createRelay, stageContext, ClientInfo, type ProxyRequest, type ProxyResponse } from '@relay/core';
import { retry } from '@relay/retry';
import { closedPort, fetchRaw, sendRaw, serveRelay, waitFor } from '@relay/testkit';
import { observe, requestId, requestIdOf } from '../src/index.js';
import { Registry } from 'prom-client';
import { scripted, serveWithUpgrades } from './helpers.js';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('a valid client id is kept, sent upstream on every attempt and back to the client', async () => {
  const upstream = await scripted([502, 200]);
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, stages: [requestId(), retry({ maxRetries: 1, backoffFactor: 1 })] }),
  );
  const response = await fetchRaw(`${served.url}/`, { headers: { 'x-request-id': 'client-id_1.2:3' } });
  assert.is(response.headers['x-request-id'], 'client-id_1.2:3');
  assert.equal(upstream.requests.map((seen) => seen.headers['x-request-id']), ['client-id_1.2:3', 'client-id_1.2:3']);
  await served.close();
  await upstream.close();
});

test('a missing, too long or unsafe id is replaced by a UUID', async () => {
  const upstream = await scripted([200]);
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [requestId({ maxLength: 16 })] }));
  for (const sent of [undefined, 'x'.repeat(17), 'a b', 'id"quote', 'id\\x']) {
    const headers: Record<string, string> = sent === undefined ? {} : { 'x-request-id': sent };
    const response = await fetchRaw(`${served.url}/`, { headers });
    const id = String(response.headers['x-request-id']);
    assert.match(id, uuid);
    assert.is(upstream.requests.at(-1)!.headers['x-request-id'], id);
  }
  await served.close();
  await upstream.close();
});

test('trustIncoming: false, a custom header and generator, response: false', async () => {
  const upstream = await scripted([200]);
  let count = 0;
  const stage = requestId({ header: 'X-Correlation-Id', trustIncoming: false, response: false, generate: () => `gen-${++count}` });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [stage] }));
  const response = await fetchRaw(`${served.url}/`, { headers: { 'x-correlation-id': 'from-client' } });
  assert.is(upstream.requests[0]!.headers['x-correlation-id'], 'gen-1');
  assert.is(response.headers['x-correlation-id'], undefined);
  await served.close();
  await upstream.close();
});

test('requestIdOf(client) gives the id to later stages; a bad generator is a 500, never a crash', async () => {
  const client = new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'h', mountPath: '', originalUrl: '/' });
  let seen: string | undefined;
  const handler = compose([requestId({ generate: () => 'fixed' })], async (request: ProxyRequest): Promise<ProxyResponse> => {
    seen = requestIdOf(request.client);
    return { status: 204, statusMessage: '', headers: {}, body: null };
  }, stageContext());
  const response = await handler({ method: 'GET', path: '/', headers: {}, body: null, replayBody: null, attempt: 1, client });
  assert.is(seen, 'fixed');
  assert.is(response.headers['x-request-id'], 'fixed');
  const upstream = await scripted([200]);
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [requestId({ generate: () => 'bad id' })] }));
  assert.is((await fetchRaw(`${served.url}/`)).status, 500);
  assert.is((await fetchRaw(`${served.url}/`, { headers: { 'x-request-id': 'ok' } })).status, 200);
  await served.close();
  await upstream.close();
});

test('a request the id stage fails (generate returns an unsafe id) still gets its access line and count, with no attempt', async () => {
  const upstream = await scripted([200]);
  const lines: string[] = [];
  const registry = new Registry();
  for (const withRetry of [false, true]) {
    lines.length = 0;
    const obs = observe({ requestId: { generate: () => 'not safe\n' }, accessLog: { stream: { write: (line: string) => lines.push(line) } }, metrics: { registry, relay: `id-${withRetry}` } });
    const stages = withRetry ? [obs.request, retry({ maxRetries: 1 }), obs.attempt] : [obs.request, obs.attempt];
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages }));
    assert.is((await fetchRaw(`${served.url}/`)).status, 500);
    assert.ok(await waitFor(() => lines.length === 1));
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal([line.status, line.code, line.attempts, line.requestId], [500, 'ERR_INTERNAL', 0, null]);
    const text = await registry.metrics();
    assert.match(text, new RegExp(`relay_requests_total\\{relay="id-${withRetry}",route="",method="GET",status_class="5xx",target="[^"]+"\\} 1`));
    assert.not.match(text, new RegExp(`relay_upstream_attempts_total\\{relay="id-${withRetry}"`));
    await served.close();
  }
  assert.is(upstream.requests.length, 0);
  await upstream.close();
});

test("the relay's own error answers carry the id too: 502 over HTTP, over relay.fetch and on a refused WebSocket handshake", async () => {
  const port = await closedPort();
  const lines: string[] = [];
  const obs = observe({ requestId: true, accessLog: { stream: { write: (line: string) => lines.push(line) } } });
  const options = { targetBaseUrl: `http://127.0.0.1:${port}`, stages: [obs.request, obs.attempt] };
  const served = await serveWithUpgrades(options);
  const response = await fetchRaw(`${served.url}/down`, { headers: { 'x-request-id': 'err-1' } });
  assert.is(response.status, 502);
  assert.is(response.headers['x-request-id'], 'err-1');
  assert.match(response.body.toString(), /ERR_UPSTREAM_UNREACHABLE/);
  assert.ok(await waitFor(() => lines.length === 1));
  assert.is(JSON.parse(lines[0]!).requestId, 'err-1');
  const made = await fetchRaw(`${served.url}/down`);
  assert.match(String(made.headers['x-request-id']), uuid);
  const handshake = await sendRaw(
    Number(new URL(served.url).port),
    'GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Request-Id: ws-1\r\n\r\n',
  );
  assert.match(handshake, /^HTTP\/1\.1 502 /);
  assert.match(handshake, /\r\nx-request-id: ws-1\r\n/);
  await served.close();
  const relay = createRelay(options);
  await relay.startup();
  const fetched = await relay.fetch(new Request('http://relay.test/down', { headers: { 'x-request-id': 'fetch-1' } }), { address: '127.0.0.1' });
  assert.is(fetched.status, 502);
  assert.is(fetched.headers.get('x-request-id'), 'fetch-1');
  await relay.shutdown();
});

test('options are checked', () => {
  assert.throws(() => requestId({ headr: 'x' } as never), /unknown option "headr" \(did you mean "header"\?/);
  assert.throws(() => requestId({ header: 'bad header' }), /header must be a header name/);
  assert.throws(() => requestId({ maxLength: 0 }), /maxLength/);
  assert.throws(() => requestId({ generate: 'uuid' as never }), /generate must be a function/);
});

test.run();
