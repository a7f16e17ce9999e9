// Issue 22 (review s40): a CONNECT the egress proxy refuses is a failure to reach the upstream,
// not the upstream's answer. curl ("CONNECT tunnel failed, response 407"), undici's ProxyAgent
// and nginx/Envoy as gateways all make it an error; the client of a reverse proxy must never get
// the egress proxy's 407 (asking it to log in to a proxy it never talked to) or its policy 403
// dressed as the upstream's. https-proxy-agent alone replays the proxy's answer as the upstream's.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, memoryLogger, serveRelay, tlsFixture } from '@relay/testkit';
import { gotTransport } from '../src/transport/got.js';
import { createRelay, httpTransport } from '../src/index.js';

const refusals = [
  ['407', 'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="corp-egress"\r\nContent-Type: text/plain\r\nContent-Length: 29\r\n\r\negress proxy: login required\n'],
  ['403', 'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n\r\negress proxy: host not allowed'],
] as const;

/** An https: upstream on 127.0.0.1 (reached as `localhost`, the fixture's name), and whether a request reached it. */
async function startSecureUpstream(): Promise<{ server: Server; url: string; reached: () => boolean }> {
  let reached = false;
  const server = createHttpsServer({ ...tlsFixture }, (_req, res) => {
    reached = true;
    res.end('tls');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server: server as unknown as Server, url: `https://localhost:${(server.address() as AddressInfo).port}`, reached: () => reached };
}

/** A forward proxy that answers each CONNECT with `answer(req)`: raw bytes to refuse, `null` to open the tunnel. */
async function startProxy(answer: (req: IncomingMessage) => string | null): Promise<{ server: Server; url: string; connects: IncomingMessage[] }> {
  const connects: IncomingMessage[] = [];
  const server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    connects.push(req);
    const refusal = answer(req);
    if (refusal !== null) {
      socket.end(refusal);
      return;
    }
    const [host, port] = req.url!.split(':');
    const tunnel = connect(Number(port), host!, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      tunnel.write(head);
      tunnel.pipe(socket);
      socket.pipe(tunnel);
    });
    tunnel.on('error', () => socket.destroy());
    socket.on('error', () => tunnel.destroy());
  });
  return { server, url: await listen(server), connects };
}

for (const [name, transport] of [['http', httpTransport], ['got', gotTransport]] as const) {
  for (const [status, answer] of refusals) {
    test(`${name}: an egress proxy that refuses the CONNECT tunnel (${status}) gives the client 502 and a log line, never the proxy's own answer`, async () => {
      const upstream = await startSecureUpstream();
      const proxy = await startProxy(() => answer);
      const logger = memoryLogger();
      const served = await serveRelay(
        createRelay({ targetBaseUrl: upstream.url, tls: { ca: tlsFixture.cert }, logger, transport: transport({ proxy: proxy.url }) }),
      );
      try {
        const reply = await fetchRaw(`${served.url}/secret`);
        assert.is(upstream.reached(), false);
        assert.not.match(reply.text, /egress proxy/, "the proxy's body is not the upstream's");
        assert.is(reply.headers['proxy-authenticate'], undefined, "the proxy's challenge is not the client's");
        assert.is(reply.status, 502, `the proxy's ${status} to the CONNECT is not the upstream's answer`);
        const failures = logger.lines.filter((line) => line.level === 'warn');
        assert.is(failures.length, 1, 'one log line for the one failed attempt');
        assert.is(failures[0]!.fields.code, 'ERR_UPSTREAM_UNREACHABLE');
        assert.match(String(failures[0]!.fields.error), `refused the CONNECT tunnel to localhost:${new URL(upstream.url).port} with status ${status}`);
      } finally {
        await served.close();
        await close(proxy.server);
        await close(upstream.server);
      }
    });
  }

  test(`${name}: the proxy's credentials go to the proxy, never into the log, and each refused attempt is logged once`, async () => {
    const upstream = await startSecureUpstream();
    const proxy = await startProxy(() => refusals[0][1]);
    const proxyUrl = new URL(proxy.url);
    proxyUrl.username = 'relay-user';
    proxyUrl.password = 's3cr3t-pw';
    const logger = memoryLogger();
    const served = await serveRelay(
      createRelay({ targetBaseUrl: upstream.url, tls: { ca: tlsFixture.cert }, logger, transport: transport({ proxy: proxyUrl }) }),
    );
    try {
      assert.is((await fetchRaw(`${served.url}/a`)).status, 502);
      assert.is((await fetchRaw(`${served.url}/b`)).status, 502, 'a refusal leaves nothing in the pool that answers the next request');
      assert.is(proxy.connects.length, 2);
      const token = Buffer.from('relay-user:s3cr3t-pw').toString('base64');
      assert.is(proxy.connects[0]!.headers['proxy-authorization'], `Basic ${token}`);
      const failures = logger.lines.filter((line) => line.level === 'warn');
      assert.is(failures.length, 2, 'one line per failed attempt');
      assert.match(String(failures[0]!.fields.error), `egress proxy ${proxyUrl.host} refused`);
      const logged = JSON.stringify(logger.lines);
      assert.not.match(logged, 's3cr3t-pw');
      assert.not.match(logged, token);
      assert.not.match(logged, 'relay-user');
    } finally {
      await served.close();
      await close(proxy.server);
      await close(upstream.server);
    }
  });

  test(`${name}: after a refused tunnel, the next one the proxy opens reaches the upstream`, async () => {
    const upstream = await startSecureUpstream();
    let refuse = true;
    const proxy = await startProxy(() => (refuse ? refusals[1][1] : null));
    const served = await serveRelay(
      createRelay({ targetBaseUrl: upstream.url, tls: { ca: tlsFixture.cert }, transport: transport({ proxy: proxy.url }) }),
    );
    try {
      assert.is((await fetchRaw(`${served.url}/first`)).status, 502);
      refuse = false;
      const reply = await fetchRaw(`${served.url}/second`);
      assert.equal([reply.status, reply.text], [200, 'tls']);
      assert.is(upstream.reached(), true);
    } finally {
      await served.close();
      await close(proxy.server);
      await close(upstream.server);
    }
  });
}

test.run();
