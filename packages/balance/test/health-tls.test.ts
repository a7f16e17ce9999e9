import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type TlsOptions } from '@relay/core';
import { fetchRaw, listen, serveRelay, tlsFixture, waitFor } from '@relay/testkit';
import { balance } from '../src/index.js';

/**
 * An https upstream with the testkit's private certificate (for localhost and 127.0.0.1) that
 * asks for a client certificate signed by the same private CA; counts the checks it answered.
 */
async function privateUpstream(): Promise<{ url: string; checks: () => number; close: () => Promise<void> }> {
  let checks = 0;
  const server: HttpsServer = createHttpsServer({ ...tlsFixture, ca: tlsFixture.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    if (req.url === '/health') checks++;
    res.end('ok');
  });
  const url = (await listen(server)).replace('http:', 'https:');
  return {
    url,
    checks: () => checks,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A relay whose only target is `url`, with `tls`, and health checks every 30 ms that fail at the first failing check. */
async function checkedRelay(url: string, tls: TlsOptions | undefined) {
  const pool = balance({ targets: [url], healthCheck: { path: '/health', interval: 30, timeout: 1_000, unhealthyThreshold: 1 } });
  const served = await serveRelay(createRelay({ targetBaseUrl: url, tls, stages: [pool] }));
  await pool.start();
  return { pool, served, healthy: () => pool.targets()[0]!.healthy };
}

const trusted = { ca: tlsFixture.cert, cert: tlsFixture.cert, key: tlsFixture.key };

test("health checks of an https target use the relay's TLS settings: its private CA and client certificate", async () => {
  const up = await privateUpstream();
  const { pool, served, healthy } = await checkedRelay(up.url, trusted);
  assert.ok(await waitFor(() => up.checks() >= 5, 5_000), `checks reached the upstream: ${up.checks()}`);
  assert.ok(healthy(), 'five passing checks later, still healthy');
  const answer = await fetchRaw(`${served.url}/`);
  assert.is(answer.status, 200, 'and the attempts connect the same way');
  pool.stop();
  await served.close();
  await up.close();
});

test('without the CA, without the client certificate, or with another servername, the checks fail as attempts do', async () => {
  const up = await privateUpstream();
  const cases: Array<[string, TlsOptions | undefined]> = [
    ['no tls settings (the private CA is not trusted)', undefined],
    ['the CA but no client certificate', { ca: tlsFixture.cert }],
    ['a servername the certificate does not name', { ...trusted, servername: 'other.example' }],
  ];
  for (const [name, tls] of cases) {
    const { pool, served, healthy } = await checkedRelay(up.url, tls);
    assert.ok(await waitFor(() => !healthy(), 5_000), `${name}: unhealthy`);
    assert.is((await fetchRaw(`${served.url}/`)).status, 502, `${name}: an attempt fails too`);
    pool.stop();
    await served.close();
  }
  assert.is(up.checks(), 0, 'no check got through');
  await up.close();
});

test.run();
