import { createServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, listen, serveRelay, startUpstream, tlsFixture } from '@relay/testkit';
import { gotTransport } from '../src/transport/got.js';
import { createRelay, httpTransport } from '../src/index.js';

// Issue 22: egress through a forward proxy: absolute-form for http: targets, CONNECT for https:.

/** A small forward proxy: relays absolute-form requests and opens CONNECT tunnels; records both. */
async function startForwardProxy(): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url!);
    const upstream = httpRequest({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req, socket, head) => {
    seen.push(`CONNECT ${req.url}`);
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
  const url = await listen(server);
  return { server, url, seen };
}

for (const [name, transport] of [['http', httpTransport], ['got', gotTransport]] as const) {
  test(`${name}: an http: upstream through the proxy (absolute-form), an https: one through a CONNECT tunnel`, async () => {
    const proxy = await startForwardProxy();
    const plain = await startUpstream();
    const secure = createHttpsServer({ ...tlsFixture }, (req, res) => res.end(`tls ${req.url} ${req.headers.host}`));
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    const securePort = (secure.address() as AddressInfo).port;

    const viaProxy = await serveRelay(createRelay({ targetBaseUrl: plain.url, transport: transport({ proxy: proxy.url }) }));
    assert.is((await fetchRaw(`${viaProxy.url}/items?x=1`)).status, 200);
    assert.equal(proxy.seen, [`GET ${plain.url}/items?x=1`]);
    assert.is(plain.requests[0]!.url, '/items?x=1');

    const tunnelled = await serveRelay(
      createRelay({ targetBaseUrl: `https://localhost:${securePort}`, tls: { ca: tlsFixture.cert }, transport: transport({ proxy: proxy.url }) }),
    );
    const answer = await fetchRaw(`${tunnelled.url}/secret`);
    assert.equal([answer.status, answer.text], [200, `tls /secret localhost:${securePort}`]);
    assert.is(proxy.seen[1], `CONNECT localhost:${securePort}`, 'the TLS session is end to end: the proxy saw only the tunnel');
    assert.throws(() => transport({ proxy: 'socks5://x:1080' }), /http:\/\/ or https:\/\//);
    await viaProxy.close();
    await tunnelled.close();
    await close(secure as unknown as Server);
    await close(proxy.server);
    await plain.close();
  });
}

test("proxy: 'env' reads HTTP_PROXY and honours NO_PROXY", async () => {
  const proxy = await startForwardProxy();
  const plain = await startUpstream();
  process.env.HTTP_PROXY = proxy.url;
  process.env.NO_PROXY = 'internal.example, .corp.example';
  const served = await serveRelay(createRelay({ targetBaseUrl: plain.url, transport: httpTransport({ proxy: 'env' }) }));
  assert.is((await fetchRaw(`${served.url}/a`)).status, 200);
  assert.equal(proxy.seen, [`GET ${plain.url}/a`]);
  await served.close();
  process.env.NO_PROXY = '127.0.0.1';
  const bypass = await serveRelay(createRelay({ targetBaseUrl: plain.url, transport: httpTransport({ proxy: 'env' }) }));
  assert.is((await fetchRaw(`${bypass.url}/b`)).status, 200);
  assert.is(proxy.seen.length, 1, 'NO_PROXY sends it direct');
  delete process.env.HTTP_PROXY;
  delete process.env.NO_PROXY;
  await bypass.close();
  await close(proxy.server);
  await plain.close();
});

test.run();
