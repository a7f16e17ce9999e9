import { createServer } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, delay, fetchRaw, listen, memoryLogger, startUpstream, waitFor } from '@relay/testkit';
import { createRelay } from '../src/index.js';

test('startup() is optional: the first request starts the relay and is served', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const server = createServer(relay.handle);
  const url = await listen(server);
  assert.is(relay.state, 'stopped');
  // Several at once: all wait for the one start.
  const answers = await Promise.all([fetchRaw(`${url}/a`), fetchRaw(`${url}/b`), fetchRaw(`${url}/c`)]);
  assert.equal(answers.map((a) => a.status), [200, 200, 200]);
  assert.is(relay.state, 'running');
  assert.is(upstream.requests.length, 3);
  await close(server);
  await relay.shutdown();
  await upstream.close();
});

test('after shutdown() requests get 503 ERR_SHUTTING_DOWN until startup() is called again', async () => {
  const upstream = await startUpstream();
  const logger = memoryLogger();
  const relay = createRelay({ targetBaseUrl: upstream.url, logger });
  const server = createServer(relay.handle);
  const url = await listen(server);
  assert.is((await fetchRaw(`${url}/x`)).status, 200);
  await relay.shutdown();
  const refused = await fetchRaw(`${url}/x`);
  assert.is(refused.status, 503);
  assert.ok(refused.text.includes('ERR_SHUTTING_DOWN'), refused.text);
  assert.is(relay.state, 'stopped', 'a late request does not bring a shut-down relay back');
  assert.ok(logger.lines.some((l) => l.level === 'info' && l.message.includes('shut down')));
  assert.is(upstream.requests.length, 1);
  await relay.startup();
  assert.is((await fetchRaw(`${url}/x`)).status, 200);
  await close(server);
  await relay.shutdown();
  await upstream.close();
});

test('a path outside the mount path gets 404 without starting the relay', async () => {
  const relay = createRelay({ targetBaseUrl: 'http://127.0.0.1:9', mountPath: '/api' });
  const server = createServer(relay.handle);
  const url = await listen(server);
  assert.is((await fetchRaw(`${url}/elsewhere`)).status, 404);
  assert.is((await fetchRaw(`${url}/apix`)).status, 404);
  assert.is(relay.state, 'stopped');
  // Under the mount the relay starts and tries the (closed) upstream port.
  assert.is((await fetchRaw(`${url}/api/x`)).status, 502);
  assert.is(relay.state, 'running');
  await close(server);
  await relay.shutdown();
});

test('startup() and shutdown() are idempotent and restartable', async () => {
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url });
  const server = createServer(relay.handle);
  const url = await listen(server);
  await Promise.all([relay.startup(), relay.startup()]);
  await relay.startup();
  assert.is(relay.state, 'running');
  assert.is((await fetchRaw(`${url}/a`)).status, 200);
  await Promise.all([relay.shutdown(), relay.shutdown()]);
  await relay.shutdown();
  assert.is(relay.state, 'stopped');
  assert.is((await fetchRaw(`${url}/b`)).status, 503);
  await relay.startup();
  assert.is((await fetchRaw(`${url}/c`)).status, 200);
  await relay.shutdown();
  await close(server);
  await upstream.close();
});

test('shutdown() waits for in-flight requests, refuses new ones with 503, then completes', async () => {
  const upstream = await startUpstream((_req, res) => setTimeout(() => res.end('slow but fine'), 300));
  const relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
  const server = createServer(relay.handle);
  const url = await listen(server);
  const inFlight = Promise.all([fetchRaw(`${url}/1`), fetchRaw(`${url}/2`)]);
  assert.ok(await waitFor(() => relay.inFlight === 2));
  const stopping = relay.shutdown({ timeout: 5000 });
  const refused = await fetchRaw(`${url}/late`);
  assert.is(refused.status, 503);
  assert.ok(refused.text.includes('ERR_SHUTTING_DOWN'));
  const results = await inFlight;
  assert.equal(results.map((r) => [r.status, r.text]), [[200, 'slow but fine'], [200, 'slow but fine']]);
  await stopping;
  assert.is(relay.state, 'stopped');
  await close(server);
  await upstream.close();
});

test('shutdown() aborts what is still in flight at the deadline', async () => {
  const upstream = await startUpstream(() => {});
  const relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
  const server = createServer(relay.handle);
  const url = await listen(server);
  const pending = fetchRaw(`${url}/never`);
  assert.ok(await waitFor(() => upstream.requests.length === 1));
  const started = Date.now();
  await relay.shutdown({ timeout: 200 });
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 150 && elapsed < 1500, `${elapsed} ms`);
  const response = await pending;
  assert.is(response.status, 503, 'the waiting client is told, not left hanging');
  assert.is(relay.inFlight, 0);
  await delay(10);
  await close(server);
  await upstream.close();
});

test('shutdown() destroys the keep-alive agent: no upstream socket is left open', async () => {
  const upstream = await startUpstream();
  let open = 0;
  upstream.server.on('connection', (socket) => {
    open++;
    socket.on('close', () => open--);
  });
  const relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
  const server = createServer(relay.handle);
  const url = await listen(server);
  await fetchRaw(`${url}/x`);
  assert.is(open, 1, 'one kept-alive connection');
  await relay.shutdown();
  assert.ok(await waitFor(() => open === 0), 'the connection was closed');
  await close(server);
  await upstream.close();
});

test.run();
