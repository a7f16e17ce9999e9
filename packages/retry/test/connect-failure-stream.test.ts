// A streamed request body (too large to buffer, or buffering off) whose first attempt never got a
// connection is retried: nothing of it was read, so the next attempt sends it whole. nginx, Envoy and
// HAProxy move on after a connect failure whatever the body, because the request never left.
// Once a byte of the body was read, it is still never sent again.
import { createServer, request as httpRequest } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytePattern, close, closedPort, delay, memoryLogger, serveRelay, startUpstream, sha256, waitFor, type ClientResponse, type Upstream } from '@relay/testkit';
import { createRelay, type Transport } from '@relay/core';
import { gotTransport } from '@relay/core/got';
import { undiciTransport } from '@relay/core/undici';
// Not a dependency of @relay/retry: the balancer's source, for a retry that moves to the other member.
import { balance } from '../../balance/src/index.js';
import { retry } from '../src/index.js';

const transports: Array<[string, () => Transport | undefined]> = [
  ['http', () => undefined],
  ['got', () => gotTransport()],
  ['undici', () => undiciTransport()],
];


/** Sends `body` in `parts` writes, `gap` ms apart; with `length` it declares a Content-Length, else it goes chunked. */
function upload(url: string, body: Buffer, options: { method: string; length: boolean; parts: number; gap: number }): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (options.length) headers['content-length'] = String(body.length);
    const req = httpRequest(url, { method: options.method, agent: false, headers });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const whole = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, statusMessage: '', headers: res.headers, rawHeaders: res.rawHeaders, body: whole, text: whole.toString(), complete: res.complete });
      });
    });
    void (async () => {
      const size = Math.ceil(body.length / options.parts);
      for (let offset = 0; offset < body.length; offset += size) {
        req.write(body.subarray(offset, offset + size));
        await delay(options.gap);
      }
      req.end();
    })();
  });
}

function hashingUpstream(): Promise<Upstream> {
  return startUpstream((_req, res, seen) => {
    const text = `got ${seen.body.length} ${sha256(seen.body)}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) }).end(text);
  });
}

for (const [name, transport] of transports) {
  test(`${name}: a streamed PUT (Content-Length over maxReplayBytes) whose first member refuses reaches the other member whole`, async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const live = await hashingUpstream();
    const logger = memoryLogger();
    const pool = balance({ targets: [dead, live.url], strategy: 'round-robin', outlier: false });
    const served = await serveRelay(
      createRelay({ targetBaseUrl: live.url, transport: transport(), logger, stages: [retry({ maxRetries: 1, backoffFactor: 5, maxReplayBytes: 1024 }), pool] }),
    );
    const body = bytePattern(200_000);
    // Two requests: round-robin sends one of them to the refusing member first.
    for (let index = 0; index < 2; index++) {
      const response = await upload(`${served.url}/files/${index}`, body, { method: 'PUT', length: true, parts: 4, gap: 5 });
      assert.is(response.status, 200, `request ${index}: ${response.text}`);
      assert.is(response.text, `got ${body.length} ${sha256(body)}`);
    }
    assert.is(live.requests.length, 2, 'each request reached the live member once');
    const retried = logger.lines.filter((line) => line.message === 'retrying upstream request');
    assert.is(retried.length, 1, 'the refused attempt was retried');
    assert.is(retried[0]!.fields.reason, 'ERR_UPSTREAM_UNREACHABLE');
    await served.close();
    await live.close();
  });

  test(`${name}: a chunked POST opted in with buffering off (maxReplayBytes: 0) is retried on the same target once it listens`, async () => {
    const port = await closedPort();
    const logger = memoryLogger();
    const served = await serveRelay(
      createRelay({
        targetBaseUrl: `http://127.0.0.1:${port}`,
        transport: transport(),
        logger,
        stages: [retry({ maxRetries: 3, backoffFactor: 300, maxReplayBytes: 0, methods: ['POST'] })],
      }),
    );
    const body = bytePattern(50_000);
    const pending = upload(`${served.url}/orders`, body, { method: 'POST', length: false, parts: 5, gap: 2 });
    assert.ok(await waitFor(() => logger.lines.some((line) => line.fields.reason === 'ERR_UPSTREAM_UNREACHABLE'), 3000), 'the refused attempt is retried');
    // Only now does an upstream listen on the port the relay points at.
    const seen: Buffer[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        seen.push(Buffer.concat(chunks));
        res.end(`got ${sha256(Buffer.concat(chunks))}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const response = await pending;
    assert.is(response.status, 200, response.text);
    assert.is(response.text, `got ${sha256(body)}`);
    assert.is(seen.length, 1);
    assert.ok(seen[0]!.equals(body), 'the upstream got the whole body');
    await served.close();
    await close(server);
  });
}

test('a streamed PUT whose body reached the upstream before a reset is still not retried: one upstream copy, 502', async () => {
  const upstream: Upstream = await startUpstream((_req, res) => {
    res.socket?.resetAndDestroy();
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [retry({ maxRetries: 2, backoffFactor: 5, maxReplayBytes: 1024 })] }));
  const body = bytePattern(100_000);
  const response = await upload(`${served.url}/files/x`, body, { method: 'PUT', length: true, parts: 4, gap: 5 });
  assert.is(response.status, 502);
  assert.is(upstream.requests.length, 1);
  assert.ok(upstream.requests[0]!.body.equals(body), 'the one copy was whole');
  await served.close();
  await upstream.close();
});

test.run();
