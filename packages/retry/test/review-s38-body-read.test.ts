// Review s38l: `bodyRead: 'connected'`, which retry() asks for on a streamed body. A chunked body
// that outgrew maxReplayBytes streams (BodyMode.Stream), but the collector had read it and put it back
// (readableDidRead), so a refused first connection was never retried: 502, where the README promises
// a streamed body whose attempt failed before connecting is retried whole.
import { request as httpRequest } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytePattern, closedPort, delay, serveRelay, startUpstream, sha256, type Upstream } from '@relay/testkit';
import { createRelay, type Transport } from '@relay/core';
import { gotTransport } from '@relay/core/got';
// Not a dependency of @relay/retry: the balancer's source, for a retry that moves to the other member.
import { balance } from '../../balance/src/index.js';
import { retry } from '../src/index.js';

const transports: Array<[string, () => Transport | undefined]> = [
  ['http', () => undefined],
  ['got', () => gotTransport()],
];

/** A chunked PUT written in `parts`; a client error (EPIPE once the relay answered) is status 0. */
function chunkedPut(url: string, body: Buffer, parts: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { method: 'PUT', agent: false, headers: { 'content-type': 'application/octet-stream' } });
    req.on('error', (error) => resolve({ status: 0, text: error.message }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    void (async () => {
      const size = Math.ceil(body.length / parts);
      for (let offset = 0; offset < body.length && !req.destroyed; offset += size) {
        req.write(body.subarray(offset, offset + size));
        await delay(2);
      }
      if (!req.destroyed) req.end();
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
  test(`${name}: a chunked PUT that outgrew maxReplayBytes, first member refusing, reaches the live member whole`, async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const live = await hashingUpstream();
    const pool = balance({ targets: [dead, live.url], strategy: 'round-robin', outlier: false });
    const served = await serveRelay(createRelay({ targetBaseUrl: live.url, transport: transport(), stages: [retry({ maxRetries: 1, backoffFactor: 5, maxReplayBytes: 1024 }), pool] }));
    try {
      const body = bytePattern(200_000);
      // Two requests: round-robin sends one of them to the refusing member first.
      for (let index = 0; index < 2; index++) {
        const response = await chunkedPut(`${served.url}/files/${index}`, body, 8);
        assert.is(response.status, 200, `request ${index}: ${response.text}`);
        assert.is(response.text, `got ${body.length} ${sha256(body)}`);
      }
      assert.is(live.requests.length, 2, 'each request reached the live member once');
    } finally {
      await served.close();
      await live.close();
    }
  });
}

test.run();
