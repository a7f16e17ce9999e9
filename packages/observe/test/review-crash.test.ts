// Review (crashes, hangs, leaks): an observer that fails must not change what the client gets
// ("an observer failed; the request goes on"). Tracing's attempt span and its `traceparent`
// injection run unguarded today: a tracer or propagator that throws turns every relayed request,
// and every WebSocket handshake, into a 500.
import type { TextMapPropagator, TracerProvider } from '@opentelemetry/api';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { observe } from '../src/index.js';

function fails(what: string): () => never {
  return () => {
    throw new Error(`${what} failed`);
  };
}

/** One GET through a relay observed with these tracing options: the status and the relay's log lines. */
async function relayedWith(tracing: { tracerProvider?: TracerProvider; propagator?: TextMapPropagator }): Promise<{ status: number; codes: unknown[] }> {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const obs = observe({ tracing });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [obs.request, obs.attempt] }));
  try {
    const response = await fetchRaw(`${served.url}/users/1`);
    return { status: response.status, codes: logger.lines.map((line) => line.fields.code) };
  } finally {
    await served.close();
    await upstream.close();
  }
}

test('a tracer whose startSpan throws: the request is still relayed (200), the failure logged as ERR_OBSERVER', async () => {
  const tracerProvider = { getTracer: () => ({ startSpan: fails('startSpan'), startActiveSpan: fails('startActiveSpan') }) } as unknown as TracerProvider;
  const { status, codes } = await relayedWith({ tracerProvider });
  assert.is(status, 200, `the client got ${status}; log codes ${JSON.stringify(codes)}`);
  assert.ok(codes.includes('ERR_OBSERVER'), JSON.stringify(codes));
});

test('a propagator whose inject and extract throw: the request is still relayed (200), the failure logged as ERR_OBSERVER', async () => {
  const propagator = { inject: fails('inject'), extract: fails('extract'), fields: () => [] } as unknown as TextMapPropagator;
  const { status, codes } = await relayedWith({ propagator });
  assert.is(status, 200, `the client got ${status}; log codes ${JSON.stringify(codes)}`);
  assert.ok(codes.includes('ERR_OBSERVER'), JSON.stringify(codes));
});

test.run();
