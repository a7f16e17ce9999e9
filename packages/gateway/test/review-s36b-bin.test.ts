// Review s36b (gateway, issue 19), through the real `relay` bin: SIGTERM with HTTP/2 streams in
// flight on the TLS listener (docs/gateway.md: "On SIGTERM every HTTP/2 session gets a GOAWAY at
// once, and its requests in flight finish within timeouts.shutdown"): an upload still being sent
// finishes whole, a request that outlives the shutdown timeout is ended, the process exits 0.
// And `relay check` on config errors found after the schema (config-error.ts `issueAt`): the line.
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startUpstream, tlsFixture, waitFor, type Upstream } from '@relay/testkit';
import { configDir, runBin, startBin, type ServingBin } from './bin.js';

const files = configDir();
let api: Upstream;
let gateway: ServingBin;
const forever: ServerResponse[] = [];

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url?.startsWith('/forever')) {
    req.resume();
    forever.push(res);
    return;
  }
  let bytes = 0;
  req.on('data', (chunk: Buffer) => (bytes += chunk.length));
  req.on('end', () => res.end(String(bytes)));
}

test.before(async () => {
  api = await startUpstream(upstreamHandler, { streaming: true });
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  const config = files.write(
    'gateway.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }',
      'timeouts: { shutdown: 3000 }',
      'routes:',
      '  - name: api',
      `    upstream: ${api.url}`,
      '',
    ].join('\n'),
  );
  gateway = await startBin(['serve', config]);
});

test.after(async () => {
  await gateway?.stop('SIGKILL');
  for (const res of forever.splice(0)) res.destroy();
  await api.close();
  files.cleanup();
});

test('SIGTERM with HTTP/2 streams in flight: GOAWAY at once, an upload still being sent finishes whole, a request past timeouts.shutdown is ended, exit 0', async () => {
  const session: ClientHttp2Session = await new Promise((resolve, reject) => {
    const client = http2Connect(`https://localhost:${gateway.port}`, { ca: tlsFixture.cert });
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
  try {
    let goAwayAt = 0;
    session.on('goaway', () => (goAwayAt = Date.now()));
    // An upload sent in 20 pieces over 2 s, through the signal.
    const upload = session.request({ ':method': 'POST', ':path': '/upload' });
    const uploaded = new Promise<{ status: number; body: string }>((resolve, reject) => {
      let status = 0;
      let body = '';
      upload.on('response', (head) => (status = Number(head[':status'])));
      upload.on('data', (chunk: Buffer) => (body += chunk));
      upload.on('end', () => resolve({ status, body }));
      upload.on('error', reject);
    });
    let sent = 0;
    const piece = Buffer.alloc(32 * 1024, 'p');
    const pump = setInterval(() => {
      upload.write(piece);
      if (++sent === 20) {
        clearInterval(pump);
        upload.end();
      }
    }, 100);
    // A request the upstream never answers.
    const stuck = session.request({ ':path': '/forever' });
    let stuckStatus = 'none';
    stuck.on('response', (head) => (stuckStatus = String(head[':status'])));
    stuck.on('error', () => {});
    stuck.end();
    assert.ok(await waitFor(() => forever.length === 1 && sent >= 3, 10_000), 'both requests reached the upstream');
    const signalledAt = Date.now();
    const exited = gateway.stop('SIGTERM');
    const answer = await uploaded;
    assert.equal(answer, { status: 200, body: String(20 * piece.length) }, 'the upload in flight finished whole');
    assert.ok(goAwayAt > 0 && goAwayAt - signalledAt < 2_000, `GOAWAY ${goAwayAt - signalledAt} ms after SIGTERM`);
    assert.is(await exited, 0);
    const exitedAfter = Date.now() - signalledAt;
    assert.ok(exitedAfter >= 2_500 && exitedAfter < 15_000, `exited ${exitedAfter} ms after SIGTERM (shutdown timeout 3000 ms)`);
    // node's client leaves the stream closed without a 'close' event once its session had a GOAWAY: poll the flag.
    assert.ok(await waitFor(() => stuck.closed || stuck.destroyed, 5_000), 'the request past the shutdown timeout was ended');
    assert.is.not(stuckStatus, '200');
  } finally {
    session.destroy();
  }
});

test('relay check: config errors found after the schema name their line, in JSON too (an unset variable, a missing TLS file)', async () => {
  const json = files.write(
    'broken.json',
    ['{', '  "listen": [{ "port": 0 }],', '  "routes": [', '    {', '      "upstream": "${REVIEW_S36B_UNSET}"', '    }', '  ]', '}', ''].join('\n'),
  );
  const env = { ...process.env };
  delete env.REVIEW_S36B_UNSET;
  const unset = await runBin(['check', json], { env, timeoutMs: 60_000 });
  assert.is(unset.code, 2);
  assert.match(unset.stderr, /broken\.json:5: routes\[0\]\.upstream: environment variable REVIEW_S36B_UNSET is not set/);
  const yaml = files.write(
    'tls.yaml',
    ['listen:', '  - port: 0', '    tls:', '      cert: missing-cert.pem', '      key: key.pem', 'routes:', `  - upstream: ${api.url}`, ''].join('\n'),
  );
  const missing = await runBin(['check', yaml], { timeoutMs: 60_000 });
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /tls\.yaml:4: listen\[0\]\.tls\.cert: no such file: missing-cert\.pem/);
});

test.run();
