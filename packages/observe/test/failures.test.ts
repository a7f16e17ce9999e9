import { createWriteStream } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Registry } from 'prom-client';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type Logger } from '@relay/core';
import { fetchRaw, memoryLogger, serveRelay, startUpstream, waitFor } from '@relay/testkit';
import { accessLog, metrics } from '../src/index.js';

// A log sink that fails must not end the process or change what the client gets; a relay that is
// shut down and dropped must not stay reachable from the observers' subscriptions.

function upstreamWithEmpty() {
  return startUpstream((req, res) => {
    if (req.url === '/empty') {
      res.writeHead(204);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-length': '5' });
    res.end('hello');
  });
}

test('a stream whose write() throws: the client gets the upstream\'s answer, the relay logs the failure and keeps serving', async () => {
  const upstream = await upstreamWithEmpty();
  const logger = memoryLogger();
  const log = accessLog({ stream: { write: () => { throw new Error('disk full'); } } });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api', logger, stages: [log.request, log.attempt] }));
  const body = await fetchRaw(`${served.url}/api/body`);
  const empty = await fetchRaw(`${served.url}/api/empty`);
  // A refused request's line is written from a diagnostics_channel subscriber, where a throw would end the process.
  const refused = await fetchRaw(`${served.url}/elsewhere`);
  assert.equal([body.status, body.text, empty.status, refused.status], [200, 'hello', 204, 404]);
  assert.ok(await waitFor(() => logger.lines.filter((line) => line.fields.code === 'ERR_OBSERVER').length === 3), JSON.stringify(logger.lines));
  assert.is(logger.lines.find((line) => line.fields.code === 'ERR_OBSERVER')!.fields.error, 'disk full');
  assert.is((await fetchRaw(`${served.url}/api/body`)).status, 200);
  await served.close();
  await upstream.close();
});

test('a logger that throws: requests are still served', async () => {
  const upstream = await upstreamWithEmpty();
  let calls = 0;
  const boom = () => {
    calls++;
    throw new Error('logger broke');
  };
  const throwing: Logger = { debug: boom, info: boom, warn: boom, error: boom };
  const log = accessLog({ logger: throwing });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, log.attempt] }));
  assert.is((await fetchRaw(`${served.url}/body`)).status, 200);
  assert.is((await fetchRaw(`${served.url}/empty`)).status, 204);
  assert.ok(await waitFor(() => calls >= 2));
  await served.close();
  await upstream.close();
});

test('a file stream that cannot open emits "error": the relay logs it once and keeps serving', async () => {
  const upstream = await upstreamWithEmpty();
  const logger = memoryLogger();
  const log = accessLog({ stream: createWriteStream('/nonexistent-relay-dir/access.log') });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, logger, stages: [log.request, log.attempt] }));
  assert.ok(await waitFor(() => logger.lines.some((line) => line.fields.code === 'ERR_ACCESS_LOG')), JSON.stringify(logger.lines));
  assert.match(String(logger.lines.find((line) => line.fields.code === 'ERR_ACCESS_LOG')!.fields.error), /ENOENT/);
  assert.is((await fetchRaw(`${served.url}/body`)).status, 200);
  assert.is((await fetchRaw(`${served.url}/body`)).status, 200);
  await served.close();
  await upstream.close();
});

test('a relay that is shut down and dropped is collected, its access log and metrics with it', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const upstream = await upstreamWithEmpty();
  const registry = new Registry();
  let sinkRef: WeakRef<object> | null = null;
  await (async () => {
    const sink = { write(_line: string) {} };
    sinkRef = new WeakRef(sink);
    const log = accessLog({ stream: sink });
    const m = metrics({ registry, relay: 'dropped', pools: { api: { targets: () => [] } } });
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [log.request, m.request, m.attempt, log.attempt] }));
    assert.is((await fetchRaw(`${served.url}/body`)).status, 200);
    await served.close();
  })();
  for (let round = 0; round < 5; round++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  assert.is(sinkRef!.deref(), undefined, 'the dropped relay\'s access log sink is still reachable');
  // The counters stay (they are the registry's); the in-flight gauge no longer reads the stopped relay.
  const text = await registry.metrics();
  assert.match(text, /relay_requests_total\{relay="dropped"[^}]*\} 1/);
  assert.not.match(text, /relay_requests_in_flight\{relay="dropped"\}/);
  await upstream.close();
});

test('a relay started again after a shutdown reports its gauges again', async () => {
  const upstream = await upstreamWithEmpty();
  const registry = new Registry();
  const m = metrics({ registry, relay: 'again' });
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [m.request, m.attempt] });
  const served = await serveRelay(relay);
  assert.match(await registry.metrics(), /relay_requests_in_flight\{relay="again"\} 0/);
  await relay.shutdown();
  assert.not.match(await registry.metrics(), /relay_requests_in_flight\{relay="again"\}/);
  await relay.startup();
  assert.match(await registry.metrics(), /relay_requests_in_flight\{relay="again"\} 0/);
  assert.is((await fetchRaw(`${served.url}/body`)).status, 200);
  await served.close();
  await upstream.close();
});

test.run();
