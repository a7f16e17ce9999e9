import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, sendRaw, serveRelay, startUpstream, waitFor, writeChunks } from '@relay/testkit';
import { createRelay, httpTransport, type Transport } from '../src/index.js';
import { undiciTransport } from '../src/transport/undici.js';

test('pool timeout: with every connection busy, a waiting request gets 504 ERR_POOL_TIMEOUT', async () => {
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/hold') setTimeout(() => res.end('held'), 1000);
    else res.end('quick');
  });
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, transport: httpTransport({ maxSockets: 1 }), timeout: { pool: 200 } }),
  );
  const holding = fetchRaw(`${served.url}/hold`);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const started = Date.now();
  const waiting = await fetchRaw(`${served.url}/quick`);
  const elapsed = Date.now() - started;
  assert.is(waiting.status, 504);
  assert.ok(waiting.text.includes('ERR_POOL_TIMEOUT'), waiting.text);
  assert.ok(elapsed >= 150 && elapsed < 900, `${elapsed} ms`);
  assert.is((await holding).text, 'held');
  assert.is((await fetchRaw(`${served.url}/quick`)).text, 'quick', 'the pool recovers');
  assert.is(upstream.requests.filter((r) => r.url === '/quick').length, 1, 'the timed-out request never reached the upstream');
  await served.close();
  await upstream.close();
});

// The two upload stalls, told apart the same way by each transport that sends HTTP/1.1 bodies.
const uploadTransports: Array<[string, () => Transport]> = [
  ['http', () => httpTransport()],
  ['undici', () => undiciTransport()],
];

for (const [name, transport] of uploadTransports) {
  test(`${name}: write timeout: an upstream that stops reading the request body gives 504 ERR_WRITE_TIMEOUT`, async () => {
    const upstream = await startUpstream(
      (req) => {
        req.pause();
      },
      { streaming: true },
    );
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: transport(), timeout: { write: 300, read: 5000 } }));
    const started = Date.now();
    const status = await new Promise<number>((resolve) => {
      const req = request(`${served.url}/upload`, { method: 'POST', agent: false, headers: { 'content-length': 256 * 1024 * 1024 } });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(-1));
      writeChunks(req, { chunk: Buffer.alloc(1024 * 1024), count: 256 });
    });
    const elapsed = Date.now() - started;
    assert.is(status, 504);
    assert.ok(elapsed < 3000, `${elapsed} ms`);
    await served.close();
    await upstream.close();
  });

  test(`${name}: a client whose body stops coming is at fault: 408 ERR_CLIENT_TIMEOUT after timeout.write, never a 504 blamed on the upstream`, async () => {
    // nginx's client_body_timeout answers 408; the upstream took every byte it was sent.
    // The upstream answers once it has the whole body: it never does.
    const upstream = await startUpstream();
    const logger = memoryLogger();
    const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: transport(), logger, timeout: { write: 300, read: 5000 } }));
    const raw = await sendRaw(served.port, 'POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nab', 3000);
    assert.match(raw, /^HTTP\/1\.1 408 /, JSON.stringify(raw.slice(0, 200)));
    assert.ok(raw.includes('ERR_CLIENT_TIMEOUT'), raw);
    assert.not.ok(logger.lines.some((line) => line.fields.code === 'ERR_WRITE_TIMEOUT'), 'no upstream write timeout logged');
    await served.close();
    await upstream.close();
  });
}

test('read timeout measures silence, not total time: a slow steady stream completes', async () => {
  const upstream = await startUpstream((_req, res) => {
    let n = 0;
    res.writeHead(200);
    const timer = setInterval(() => {
      res.write('.');
      if (++n === 8) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, timeout: { read: 250 } }));
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.status, 200);
  assert.ok(response.complete);
  assert.is(response.text, '........');
  await served.close();
  await upstream.close();
});

test('a timeout of 0 disables that phase', async () => {
  const upstream = await startUpstream((_req, res) => setTimeout(() => res.end('late'), 400));
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, timeout: { read: 0 } }));
  const response = await fetchRaw(`${served.url}/`);
  assert.is(response.text, 'late');
  await served.close();
  await upstream.close();
});

test('an idle keep-alive connection is closed after idleTimeout, and a request after that opens a new one', async () => {
  const upstream = await startUpstream();
  upstream.server.keepAliveTimeout = 60_000;
  let open = 0;
  let opened = 0;
  upstream.server.on('connection', (socket) => {
    open++;
    opened++;
    socket.on('close', () => open--);
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport: httpTransport({ idleTimeout: 300 }), timeout: { read: 5_000 } }));
  assert.is((await fetchRaw(`${served.url}/a`)).status, 200);
  assert.is(open, 1);
  assert.ok(await waitFor(() => open === 0, 3_000), 'the idle connection was closed');
  assert.is((await fetchRaw(`${served.url}/b`)).status, 200);
  assert.is(opened, 2);
  await served.close();
  await upstream.close();
});

test.run();
