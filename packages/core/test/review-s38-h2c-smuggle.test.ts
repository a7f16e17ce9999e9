// Review s38j (issues 9 and 13, hostile clients), black box: an `Upgrade: h2c` offer is served as
// the plain request it also is (plain-upgrade.ts rebuilds its head without `Upgrade` and the
// names `Connection` lists). A client that lists a framing field in `Connection` next to the
// offer gets that field removed from the rebuilt head, so the body it sent is parsed as a second
// request (CL; with TE the body is lost, racing node's own 400, so not asserted here): the relay forwards two requests where the client sent one, past
// any front proxy that framed it as one. Item 7 refuses `Content-Length` named in `Connection`
// with 400 on a plain request; the h2c path must not be a way around it.
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, sendRaw, startUpstream, waitFor, type Upstream } from '@relay/testkit';
import { createRelay, gatewayServerOptions, type Relay } from '../src/index.js';

interface Front {
  relay: Relay;
  server: Server;
  port: number;
  close(): Promise<void>;
}

async function startFront(upstream: Upstream): Promise<Front> {
  const relay = createRelay({ targetBaseUrl: upstream.url, upstreamPrefix: '/v1', logger: memoryLogger() });
  await relay.startup();
  const server = createHttpServer({ ...gatewayServerOptions }, relay.handle);
  server.on('upgrade', relay.upgrade);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    relay,
    server,
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await relay.shutdown({ timeout: 500 });
    },
  };
}

const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n';

test('an h2c offer with "Connection: Upgrade, HTTP2-Settings, Content-Length": the upstream never sees the body as a second request (400, as item 7 answers without the offer)', async () => {
  const upstream = await startUpstream();
  const front = await startFront(upstream);
  try {
    const payload =
      'POST /a HTTP/1.1\r\nHost: gw\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n' +
      `Connection: Upgrade, HTTP2-Settings, Content-Length\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`;
    const answer = await sendRaw(front.port, payload, 1500);
    const seen = upstream.requests.map((request) => `${request.method} ${request.url} body=${JSON.stringify(request.body.toString())}`);
    assert.not.ok(
      upstream.requests.some((request) => request.url.includes('smuggled')),
      `one request sent, the upstream saw: ${JSON.stringify(seen)}`,
    );
    assert.ok(
      /^HTTP\/1\.1 400 /.test(answer) || seen.every((line) => line === `POST /v1/a body=${JSON.stringify(smuggled)}`),
      `either refused (400) or forwarded whole; client got ${JSON.stringify(answer.split('\r\n')[0])}, upstream saw ${JSON.stringify(seen)}`,
    );
    assert.ok(await waitFor(() => front.relay.inFlight === 0, 2000));
  } finally {
    await front.close();
    await upstream.close();
  }
});

test.run();
