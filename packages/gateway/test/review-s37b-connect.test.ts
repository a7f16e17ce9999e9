// Review s37b (gateway CONNECT refusal, black box): the real `relay serve` bin with a plain and a
// TLS listener. CONNECT over HTTP/1.1 on both and over HTTP/2 gets the documented short 405 with
// Allow (RFC 9110 §15.5.6), the connection closed, nothing sent upstream; the listener keeps serving.
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sendRaw, startUpstream, tlsFixture, type Upstream } from '@relay/testkit';
import { configDir, startBin, type ServingBin } from './bin.js';

const files = configDir();
let upstream: Upstream;
let gateway: ServingBin;
let plainPort = 0;
let tlsPort = 0;

test.before(async () => {
  upstream = await startUpstream((req, res) => void setTimeout(() => res.end('ok'), req.url === '/slow' ? 300 : 0));
  files.write('cert.pem', tlsFixture.cert.toString());
  files.write('key.pem', tlsFixture.key.toString());
  const config = files.write(
    'connect.yaml',
    [
      'listen:',
      '  - { host: 127.0.0.1, port: 0 }',
      '  - { host: 127.0.0.1, port: 0, tls: { cert: cert.pem, key: key.pem } }',
      'routes:',
      `  - upstream: ${upstream.url}`,
      '',
    ].join('\n'),
  );
  gateway = await startBin(['serve', config], { listeningCount: 2 });
  const ports = gateway.logs.filter((line) => line.msg === 'listening').map((line) => line.port as number);
  [plainPort, tlsPort] = ports as [number, number];
});

test.after(async () => {
  await gateway?.stop('SIGTERM');
  await upstream.close();
  files.cleanup();
});

/** Everything the listener writes back for `payload` until it closes the connection (or 4 s); `closed` says whether it closed. */
function exchange(payload: string, secure: boolean): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = secure
      ? tlsConnect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca: tlsFixture.cert, ALPNProtocols: ['http/1.1'] })
      : netConnect(plainPort, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => finish(false), 4_000);
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    socket.on(secure ? 'secureConnect' : 'connect', () => socket.write(payload));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

const connectRequest = 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n';

test('CONNECT over HTTP/1.1 on the plain and the TLS listener: 405 with an Allow header (RFC 9110 §15.5.6 "MUST generate an Allow header field in a 405"), Connection: close, the connection closed', async () => {
  // docs/gateway.md: "A CONNECT request ... gets a short 405 on every listener, over HTTP/1.1 with Connection: close".
  // RFC 9110 §15.5.6: the origin server MUST generate Allow in a 405 (empty when no method is allowed);
  // the gateway's own 405s carry Allow (review-s36-gateway, docs/gateway.md "405 with Allow").
  for (const secure of [false, true]) {
    const before = upstream.requests.length;
    const { text, closed } = await exchange(connectRequest, secure);
    const head = text.split('\r\n\r\n')[0] ?? '';
    assert.match(head, /^HTTP\/1\.1 405 /, `${secure ? 'TLS' : 'plain'}: ${JSON.stringify(text.slice(0, 120))}`);
    assert.match(head, /\r\nconnection: close/i);
    assert.ok(closed, 'the connection stayed open');
    assert.is(upstream.requests.length, before, 'CONNECT reached the upstream');
    assert.match(head, /\r\nallow:/i, `${secure ? 'TLS' : 'plain'} 405 without Allow: ${JSON.stringify(head)}`);
  }
});

test('CONNECT over HTTP/2 on the TLS listener: 405 with Allow on its stream; the session still serves a GET', async () => {
  // RFC 9113 §8.5 CONNECT; RFC 9110 §15.5.6 Allow in a 405. node:http2 itself answers an unhandled CONNECT 405.
  const session = http2Connect(`https://localhost:${tlsPort}`, { ca: tlsFixture.cert });
  try {
    const head = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const stream = session.request({ ':method': 'CONNECT', ':authority': 'example.com:443' }, { endStream: false });
      stream.on('response', (headers) => {
        resolve(headers);
        stream.close();
      });
      stream.on('error', reject);
    });
    assert.is(head[':status'], 405);
    const ok = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/after' });
      stream.on('response', (headers) => resolve(Number(headers[':status'])));
      stream.on('error', reject);
      stream.resume();
      stream.end();
    });
    assert.is(ok, 200);
    assert.ok('allow' in head, `HTTP/2 405 without Allow: ${JSON.stringify(head)}`);
  } finally {
    session.close();
  }
});

test('regression: a CONNECT answered, the plain listener serves the next client; bytes pipelined after CONNECT are not served as a request', async () => {
  // nginx closes after its 400 to CONNECT; nothing after the CONNECT head on that connection is a request.
  const before = upstream.requests.length;
  const answer = await sendRaw(plainPort, `${connectRequest}GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n`, 3_000);
  assert.is(answer.match(/HTTP\/1\.1 /g)?.length, 1, answer);
  assert.is(upstream.requests.length, before);
  const next = await sendRaw(plainPort, 'GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 3_000);
  assert.match(next, /^HTTP\/1\.1 200 /);
});

test('a CONNECT pipelined behind a GET whose answer is still coming: the GET is answered first, whole, then the 405 (responses in request order, RFC 9112 §9.3.2)', async () => {
  // RFC 9112 §9.3.2: "A server ... MUST send the corresponding responses in the same order that the requests were received."
  // nginx handles pipelined requests one after another. Here the refusal writes its 405 on the socket at once, ahead of
  // the GET's answer (which then has no connection to go on): the client reads the 405 as the GET's response.
  const answer = await sendRaw(plainPort, `GET /slow HTTP/1.1\r\nHost: x\r\n\r\n${connectRequest}`, 4_000);
  const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => match[1]);
  assert.equal(statuses, ['200', '405'], JSON.stringify(answer.slice(0, 400)));
});

test.run();
