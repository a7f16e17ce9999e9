// Real clients' uploads through the gateway (review s40). curl sends `Expect: 100-continue`
// for a body over 1 MiB and waits for `100 Continue` before sending it. A route's `bodyLimit`
// refuses a declared `Content-Length` over its limit; @relay/body's README: "`bodyLimit` answers 413
// to a declared length over the limit without a 100" (end to end, `server.on('checkContinue', …)`),
// and nginx's `client_max_body_size` does the same (ngx_http_core_find_config_handler sets
// `expect_tested` before its 413: the client never gets `100 Continue` and never sends the body).
// The gateway's listeners hand such requests to the routes (`checkContinue`): without it node
// answered `100 Continue` before any route ran, and curl uploaded megabytes to get the 413. A route
// that takes the body still gets it (the upstream's 100 reaches curl), and a path no route takes
// gets its 404 without an upload.
import { execFile } from 'node:child_process';
import { connect as http2Connect } from 'node:http2';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, startUpstream, tlsFixture, type Upstream } from '@relay/testkit';
import { serve, type RunningGateway } from '../src/index.js';
import { configDir } from './bin.js';

const files = configDir();
let api: Upstream;
let running: RunningGateway;
let plainPort = 0;
let tlsPort = 0;
const bodyFile = join(files.dir, 'upload.bin');
const uploadBytes = 3_000_000;

/** Runs curl, resolving with its stdout and stderr (`-v` lines) whatever its exit code. */
function curl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('/usr/bin/curl', args, { timeout: 20_000, maxBuffer: 16 * 1024 * 1024 }, (_error, stdout, stderr) => resolve({ stdout, stderr }));
  });
}

test.before(async () => {
  api = await startUpstream((_req, res, seen) => res.end(String(seen.body.length)));
  writeFileSync(bodyFile, Buffer.alloc(uploadBytes, 'u'));
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  const config = files.write(
    'gateway.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0 }',
      '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }',
      'routes:',
      '  - name: uploads',
      '    match: { path: /uploads }',
      `    upstream: ${api.url}`,
      '    bodyLimit: { maxBytes: 1000 }',
      '  - name: files',
      '    match: { path: /files }',
      `    upstream: ${api.url}`,
      '',
    ].join('\n'),
  );
  running = await serve({ config, logger: memoryLogger() as never, watch: false });
  plainPort = (running.servers[0]!.address() as { port: number }).port;
  tlsPort = (running.servers[1]!.address() as { port: number }).port;
});

test.after(async () => {
  await running?.stop();
  await api.close();
  files.cleanup();
});

for (const [label, url] of [
  ['HTTP/1.1', () => `http://127.0.0.1:${plainPort}/uploads/file`],
  ['HTTP/1.1 over TLS', () => `https://127.0.0.1:${tlsPort}/uploads/file`],
] as const) {
  test(`curl --data-binary of 3 MB (Expect: 100-continue) to a route whose bodyLimit is 1000 bytes gets 413 without 100 Continue and without uploading the body (${label})`, async () => {
    const { stdout, stderr } = await curl(['-sv', '-k', '--http1.1', '--data-binary', `@${bodyFile}`, '-o', '/dev/null', '-w', '%{http_code} %{size_upload}', url()]);
    assert.match(stderr, /> Expect: 100-continue/i, 'curl asked for 100 Continue');
    const [status, uploaded] = stdout.trim().split(' ').map(Number);
    assert.not.match(stderr, /< HTTP\/1\.1 100 Continue/i, 'the client was told to send a body the route refuses by its declared length');
    assert.ok(uploaded! < 1024 * 1024, `curl uploaded ${uploaded} of ${uploadBytes} bytes before its 413 (nginx: none)`);
    assert.is(status, 413);
    assert.is(api.requests.length, 0, 'the upstream never saw the request');
  });
}

test('curl --data-binary of 3 MB to a route without a bodyLimit gets the upstream\'s 100 Continue and uploads the whole body', async () => {
  const { stdout, stderr } = await curl(['-sv', '--http1.1', '--data-binary', `@${bodyFile}`, '-w', ' %{http_code} %{size_upload}', `http://127.0.0.1:${plainPort}/files/file`]);
  assert.match(stderr, /< HTTP\/1\.1 100 Continue/i, 'the upstream\'s 100 reached curl');
  assert.equal(stdout.trim().split(' ').map(Number), [uploadBytes, 200, uploadBytes], 'the upstream got every byte');
});

test('curl --data-binary of 3 MB to a path no route takes gets 404 without 100 Continue', async () => {
  const { stdout, stderr } = await curl(['-sv', '--http1.1', '--data-binary', `@${bodyFile}`, '-o', '/dev/null', '-w', '%{http_code} %{size_upload}', `http://127.0.0.1:${plainPort}/nowhere`]);
  const [status, uploaded] = stdout.trim().split(' ').map(Number);
  assert.is(status, 404);
  assert.not.match(stderr, /< HTTP\/1\.1 100 Continue/i);
  assert.ok(uploaded! < 1024 * 1024, `curl uploaded ${uploaded} bytes for a 404`);
});

test('an HTTP/2 client sending expect: 100-continue with content-length 3 MB to the same route gets 413 and no 100 Continue first', async () => {
  const session = http2Connect(`https://localhost:${tlsPort}`, { ca: tlsFixture.cert });
  const events: string[] = [];
  await new Promise<void>((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': '/uploads/file', 'content-length': String(uploadBytes), expect: '100-continue' });
    stream.on('continue', () => events.push('100'));
    stream.on('response', (headers) => events.push(String(headers[':status'])));
    stream.on('error', () => {});
    stream.resume();
    const timer = setTimeout(() => stream.close(), 3000);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    // Like curl, the body waits for the 100: none is sent here.
  });
  session.close();
  assert.equal(events, ['413'], `the client saw ${JSON.stringify(events)}`);
});

test.run();
