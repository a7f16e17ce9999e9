// Review s38i (core): a client that leaves while its upload waits for a pooled connection. With
// `maxSockets: 1` busy, a PUT whose body is larger than node's read buffer is parked; the relay
// stops reading the client socket (backpressure), so it never sees the client go. When the busy
// connection frees, the relay sends the request of a client that left a second ago, with the part
// of the body it had, and only then aborts it. DESIGN.md: "A client that disconnects aborts the
// upstream request at once, before or during the response"; nginx notices the close of a waiting
// client (EPOLLRDHUP) without reading its body.
import { createServer, request as httpRequest } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, delay, listen, serveRelay, waitFor } from '@relay/testkit';
import { createRelay, httpTransport, type Transport } from '../src/index.js';
import { gotTransport } from '../src/transport/got.js';

const transports: Array<[string, () => Transport]> = [
  ['http', () => httpTransport({ maxSockets: 1 })],
  ['got', () => gotTransport({ maxSockets: 1 })],
];

for (const [name, transport] of transports) {
  test(`${name}: a client that leaves while its 1 MB upload waits for the one pooled connection is noticed, and its request never reaches the upstream`, async () => {
    const seen: string[] = [];
    const upstream = createServer((req, res) => {
      seen.push(req.url!);
      req.on('error', () => {});
      req.resume();
      req.on('end', () => setTimeout(() => res.end('ok'), req.url === '/busy' ? 1500 : 0));
    });
    const url = await listen(upstream);
    const relay = createRelay({ targetBaseUrl: url, transport: transport(), timeout: { pool: 5000 } });
    const served = await serveRelay(relay);
    try {
      // Holds the only connection for 1.5 s.
      const busy = new Promise<void>((resolve) => {
        httpRequest(`${served.url}/busy`, { method: 'POST', agent: false }, (res) => {
          res.resume();
          res.on('end', resolve);
        }).end('x');
      });
      assert.ok(await waitFor(() => seen.length === 1, 2000), 'the busy request reached the upstream');
      const leaving = httpRequest(`${served.url}/left`, { method: 'PUT', agent: false, headers: { 'content-length': String(2_000_000) } });
      leaving.on('error', () => {});
      leaving.write(Buffer.alloc(1_000_000, 1));
      assert.ok(await waitFor(() => relay.inFlight === 2, 2000), 'the second request is in flight');
      await delay(100);
      leaving.destroy();
      const noticed = await waitFor(() => relay.inFlight === 1, 1000);
      await busy;
      await delay(300);
      assert.ok(noticed, `the relay still held the request of a client that left (inFlight ${relay.inFlight})`);
      assert.equal(seen, ['/busy'], `the upstream got the request of a client that had left: ${seen.join(', ')}`);
    } finally {
      await served.close();
      await close(upstream);
    }
  });
}

test.run();
