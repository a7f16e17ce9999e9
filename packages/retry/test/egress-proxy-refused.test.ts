// Issue 22 (review s40): a CONNECT tunnel the egress proxy refuses is a failure to reach the
// upstream (ERR_UPSTREAM_UNREACHABLE), before any byte of the request left: retried like a
// refused connection, never passed on as the upstream's answer.
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, serveRelay, tlsFixture } from '@relay/testkit';
import { createRelay, httpTransport } from '@relay/core';
import { gotTransport } from '@relay/core/got';
import { retry } from '../src/index.js';

for (const [name, transport] of [['http', httpTransport], ['got', gotTransport]] as const) {
  test(`${name}: retry() sends the request again when the egress proxy refused its tunnel`, async () => {
    const upstream = createHttpsServer({ ...tlsFixture }, (req, res) => res.end(`tls ${req.url}`));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    let connects = 0;
    const proxy = createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req, socket: Socket) => {
      connects += 1;
      // The first tunnel is refused (a policy 403), the second opened.
      if (connects === 1) return void socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\ndenied');
      const tunnel = connect(Number(req.url!.split(':')[1]), '127.0.0.1', () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        tunnel.pipe(socket);
        socket.pipe(tunnel);
      });
      tunnel.on('error', () => socket.destroy());
      socket.on('error', () => tunnel.destroy());
    });
    const proxyUrl = await listen(proxy);
    const served = await serveRelay(
      createRelay({
        targetBaseUrl: `https://localhost:${port}`,
        tls: { ca: tlsFixture.cert },
        transport: transport({ proxy: proxyUrl }),
        stages: [retry({ maxRetries: 1, backoffFactor: 5 })],
      }),
    );
    try {
      const reply = await fetchRaw(`${served.url}/items`);
      assert.equal([reply.status, reply.text], [200, 'tls /items']);
      assert.is(connects, 2);
    } finally {
      await served.close();
      await close(proxy);
      await close(upstream as unknown as Server);
    }
  });
}

test.run();
