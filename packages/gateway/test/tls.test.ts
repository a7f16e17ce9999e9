// TLS both sides through the real bin: an HTTPS listener from cert/key files, and an https
// upstream verified against a CA file (and refused without it).
import { createServer as createHttpsServer } from 'node:https';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as tlsConnect } from 'node:tls';
import { tlsFixture, tlsRenewedFixture } from '@relay/testkit';
import { configDir, startBin, type ServingBin } from './bin.js';

const files = configDir();
const upstream = createHttpsServer({ key: tlsFixture.key, cert: tlsFixture.cert }, (req, res) => res.end(`secure ${req.url}`));
let gateway: ServingBin;

function httpsGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: tlsFixture.cert, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test.before(async () => {
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  const config = files.write(
    'gateway.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }',
      'routes:',
      '  - name: verified',
      '    match: { path: /verified }',
      `    upstream: { url: "https://localhost:${port}", tls: { ca: cert.pem } }`,
      '  - name: unverified',
      '    match: { path: /unknown-ca }',
      `    upstream: https://localhost:${port}`,
      '',
    ].join('\n'),
  );
  gateway = await startBin(['serve', config]);
});

test.after(async () => {
  await gateway?.stop('SIGKILL');
  upstream.closeAllConnections();
  await new Promise((resolve) => upstream.close(resolve));
  files.cleanup();
});

test('an HTTPS listener, and an https upstream trusted through its CA file', async () => {
  const response = await httpsGet(`https://localhost:${gateway.port}/verified/x`);
  assert.equal(response, { status: 200, body: 'secure /x' });
});

test('an https upstream whose certificate is not trusted: 502, the detail only in the log', async () => {
  const response = await httpsGet(`https://localhost:${gateway.port}/unknown-ca/x`);
  assert.is(response.status, 502);
  assert.not.match(response.body, /localhost|127\.0\.0\.1|certificate/i);
  const line = await gateway.waitForLog((entry) => entry.code === 'ERR_UPSTREAM_TLS');
  assert.is(line.route, 'unverified');
});

/** The SHA-256 fingerprint of the certificate the listener presents to a new connection, and the protocol it chose of h2 and http/1.1. */
function served(port: number): Promise<{ fingerprint: string; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] };
    const socket = tlsConnect(options, () => {
      resolve({ fingerprint: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol ?? false });
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

function fingerprintOf(pem: Buffer): string {
  return new X509Certificate(pem).fingerprint256;
}

test('a renewed certificate under the same file names is served after SIGHUP, as nginx reloads it, HTTP/2 still offered', async () => {
  assert.equal(await served(gateway.port), { fingerprint: fingerprintOf(tlsFixture.cert), alpn: 'h2' });
  files.write('cert.pem', tlsRenewedFixture.cert.toString());
  files.write('key.pem', tlsRenewedFixture.key.toString());
  gateway.child.kill('SIGHUP');
  await gateway.waitForLog((line) => line.msg === 'TLS certificates reloaded');
  assert.equal(await served(gateway.port), { fingerprint: fingerprintOf(tlsRenewedFixture.cert), alpn: 'h2' });
});

test.run();
