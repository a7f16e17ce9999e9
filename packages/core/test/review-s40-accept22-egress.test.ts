// Review s40 (issue 22, egress through a forward proxy): a CONNECT the egress proxy refuses is a
// failure to reach the upstream, not the upstream's answer. curl ("CONNECT tunnel failed,
// response 407"), undici's ProxyAgent ("Proxy response (407) !== 200 when HTTP Tunneling") and
// nginx/Envoy as gateways all turn it into an error; the client of a reverse proxy must never
// get the egress proxy's 407 (which tells it to authenticate to a proxy it never talked to) or
// its policy 403 dressed as the upstream's.
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, memoryLogger, serveRelay, tlsFixture } from '@relay/testkit';
import { gotTransport } from '../src/transport/got.js';
import { createRelay, httpTransport } from '../src/index.js';

const refusals = [
  ['407', 'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="corp-egress"\r\nContent-Type: text/plain\r\nContent-Length: 29\r\n\r\negress proxy: login required\n'],
  ['403', 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n\r\negress proxy: host not allowed'],
] as const;

for (const [name, transport] of [['http', httpTransport], ['got', gotTransport]] as const) {
  for (const [status, answer] of refusals) {
    test(`${name}: an egress proxy that refuses the CONNECT tunnel (${status}) gives the client 502 and a log line, never the proxy's own answer`, async () => {
      let upstreamReached = false;
      const secure = createHttpsServer({ ...tlsFixture }, (_req, res) => {
        upstreamReached = true;
        res.end('tls');
      });
      await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
      const port = (secure.address() as AddressInfo).port;
      const proxy = createServer((_req, res) => res.writeHead(405).end());
      proxy.on('connect', (_req, socket) => socket.end(answer));
      const proxyUrl = await listen(proxy);
      const logger = memoryLogger();
      const served = await serveRelay(
        createRelay({ targetBaseUrl: `https://localhost:${port}`, tls: { ca: tlsFixture.cert }, logger, transport: transport({ proxy: proxyUrl }) }),
      );
      try {
        const reply = await fetchRaw(`${served.url}/secret`);
        assert.is(upstreamReached, false);
        assert.not.match(reply.text, /egress proxy/, "the proxy's body is not the upstream's");
        assert.is(reply.status, 502, `the proxy's ${status} to the CONNECT is not the upstream's answer`);
        assert.ok(
          logger.lines.some((line) => line.level === 'warn' || line.level === 'error'),
          'the tunnel failure is logged',
        );
      } finally {
        await served.close();
        await close(proxy);
        await close(secure as unknown as import('node:http').Server);
      }
    });
  }
}

test.run();
