// Review s38l: `bodyRead: 'connected'`, which retry() asks for on a streamed body. Two gaps:
// - a chunked body that outgrew maxReplayBytes streams (BodyMode.Stream) but the collector already
//   read it (readableDidRead), so a refused first connection is never retried: 502, where the README
//   promises a streamed body whose attempt failed before connecting is retried whole.
// - while the attempt connects, nothing reads the client's body, so a client that leaves is noticed
//   only at the connect timeout (without retry(), at once): the request stays in flight.
import { request as httpRequest } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytePattern, closedPort, delay, listen, serveRelay, startUpstream, sha256, waitFor, type Upstream } from '@relay/testkit';
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

  test(`${name}: a client that leaves while its streamed upload's attempt is connecting ends the request at once, as without retry()`, async () => {
    // A TLS target whose server never answers the handshake: the attempt stays connecting (timeout.connect 5 s).
    const sockets: Socket[] = [];
    const mute = createTcpServer((socket) => sockets.push(socket));
    const muteUrl = (await listen(mute)).replace('http:', 'https:');
    const relay = createRelay({
      targetBaseUrl: muteUrl,
      transport: transport(),
      timeout: { connect: 5000 },
      tls: { rejectUnauthorized: false },
      stages: [retry({ maxRetries: 1, backoffFactor: 5, maxReplayBytes: 0 })],
    });
    const served = await serveRelay(relay);
    try {
      const req = httpRequest(`${served.url}/files/x`, { method: 'PUT', agent: false, headers: { 'content-length': '100000' } });
      req.on('error', () => {});
      req.write(Buffer.alloc(50_000));
      assert.ok(await waitFor(() => sockets.length > 0, 2000), 'the attempt is connecting');
      await delay(50);
      assert.is(relay.inFlight, 1);
      req.destroy();
      assert.ok(await waitFor(() => relay.inFlight === 0, 1000), `still in flight 1 s after the client left: ${relay.inFlight}`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await served.close();
      await new Promise((resolve) => mute.close(resolve));
    }
  });
}

test.run();
