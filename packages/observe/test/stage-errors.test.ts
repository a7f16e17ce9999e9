// Error answers a stage makes itself (bodyLimit's 413, rateLimit's 429, a balancer's 503 with no
// target) carry their code on the response (`ProxyResponse.errorCode`): the access line names it
// as it names a relay error's code, and a SERVER span stays unset for a 4xx (the client's error).
// And the client they name is the one behind the proxies the relay trusts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SpanKind, SpanStatusCode, propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createRelay, type RelayOptions, type Stage } from '@relay/core';
import { balance } from '@relay/balance';
import { bodyLimit } from '@relay/body';
import { concurrencyLimit, rateLimit } from '@relay/limits';
import { fetchRaw, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { observe } from '../src/index.js';
import { postChunked } from './helpers.js';

propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

function observed() {
  const lines: Record<string, unknown>[] = [];
  const obs = observe({
    accessLog: { stream: { write: (line: string) => lines.push(JSON.parse(line)) } },
    tracing: { tracerProvider, serverSpan: true },
  });
  return { obs, lines };
}

async function withRelay(
  stages: (obs: ReturnType<typeof observed>['obs']) => Stage[],
  run: (url: string, lines: Record<string, unknown>[]) => Promise<void>,
  options: Partial<RelayOptions> = {},
): Promise<void> {
  exporter.reset();
  const upstream = await startUpstream((_req, res) => res.writeHead(200, { 'content-length': 2 }).end('ok'), { streaming: false });
  const { obs, lines } = observed();
  const served = await serveRelay(createRelay({ ...options, targetBaseUrl: upstream.url, stages: stages(obs) }));
  try {
    await run(served.url, lines);
  } finally {
    await served.close();
    await upstream.close();
  }
}

function serverSpans() {
  return exporter.getFinishedSpans().filter((span) => span.kind === SpanKind.SERVER);
}

test('rateLimit 429: the access line has code ERR_RATE_LIMITED; the SERVER span has no error status', async () => {
  await withRelay(
    (obs) => [obs.request, rateLimit({ points: 1, duration: 60_000 }), obs.attempt],
    async (url, lines) => {
      assert.is((await fetchRaw(`${url}/a`)).status, 200);
      assert.is((await fetchRaw(`${url}/a`)).status, 429);
      assert.ok(await waitFor(() => lines.length === 2 && serverSpans().length === 2));
      assert.equal(
        lines.map((line) => [line.status, line.code]),
        [
          [200, null],
          [429, 'ERR_RATE_LIMITED'],
        ],
      );
      const refused = serverSpans()[1]!;
      assert.is(refused.attributes['http.response.status_code'], 429);
      assert.is(refused.attributes['error.type'], undefined);
      assert.is(refused.status.code, SpanStatusCode.UNSET);
    },
  );
});

test('bodyLimit 413: a declared and a counted (chunked) oversize body are logged with code ERR_BODY_TOO_LARGE', async () => {
  await withRelay(
    (obs) => [obs.request, bodyLimit({ maxBytes: 1000 }), obs.attempt],
    async (url, lines) => {
      assert.is((await fetchRaw(`${url}/up`, { method: 'POST', body: Buffer.alloc(5000, 'x') })).status, 413);
      const chunked = await postChunked(`${url}/up`);
      assert.is(chunked, 413);
      assert.ok(await waitFor(() => lines.length === 2));
      assert.equal(
        lines.map((line) => [line.status, line.code]),
        [
          [413, 'ERR_BODY_TOO_LARGE'],
          [413, 'ERR_BODY_TOO_LARGE'],
        ],
      );
    },
  );
});

test('concurrencyLimit 429 and a pool with no target (503): their codes reach the access line; the 503 is a SERVER span error', async () => {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const slow: Stage = {
    name: 'hold',
    wrap: (next) => async (request) => {
      if (request.path.startsWith('/hold')) await held;
      return next(request);
    },
  };
  await withRelay(
    (obs) => [obs.request, concurrencyLimit({ max: 1 }), slow, obs.attempt],
    async (url, lines) => {
      const first = fetchRaw(`${url}/hold`);
      let second = 0;
      // The held request may not have reached the limit yet: ask until it has (bounded).
      for (let tries = 0; tries < 50 && second !== 429; tries++) second = (await fetchRaw(`${url}/b`)).status;
      assert.is(second, 429);
      release();
      assert.is((await first).status, 200);
      assert.ok(await waitFor(() => lines.some((line) => line.code === 'ERR_CONCURRENCY_LIMITED')));
    },
  );
  await withRelay(
    (obs) => [obs.request, balance({ targets: [] }), obs.attempt],
    async (url, lines) => {
      assert.is((await fetchRaw(`${url}/c`)).status, 503);
      assert.ok(await waitFor(() => lines.length === 1 && serverSpans().length === 1));
      assert.is(lines[0]!.code, 'ERR_NO_TARGET');
      assert.is(serverSpans()[0]!.attributes['error.type'], 'ERR_NO_TARGET');
      assert.is(serverSpans()[0]!.status.code, SpanStatusCode.ERROR);
    },
  );
});

test('behind a trusted proxy the access line and the SERVER span name the forwarded client; an untrusted peer cannot pick its own', async () => {
  const forwarded = { headers: { 'x-forwarded-for': '198.51.100.9, 203.0.113.7' } };
  await withRelay(
    (obs) => [obs.request, obs.attempt],
    async (url, lines) => {
      assert.is((await fetchRaw(`${url}/a`, forwarded)).status, 200);
      assert.ok(await waitFor(() => lines.length === 1 && serverSpans().length === 1));
      assert.is(lines[0]!.client, '203.0.113.7');
      assert.is(serverSpans()[0]!.attributes['client.address'], '203.0.113.7');
    },
    { trustProxy: ['loopback'] },
  );
  await withRelay(
    (obs) => [obs.request, obs.attempt],
    async (url, lines) => {
      assert.is((await fetchRaw(`${url}/a`, forwarded)).status, 200);
      assert.ok(await waitFor(() => lines.length === 1 && serverSpans().length === 1));
      assert.is(lines[0]!.client, '127.0.0.1');
      assert.is(serverSpans()[0]!.attributes['client.address'], '127.0.0.1');
    },
  );
});

test.run();
