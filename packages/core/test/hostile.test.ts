import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closedPort, fetchRaw, memoryLogger, sendRaw, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay } from '../src/index.js';

let upstream: Upstream;
let served: RelayServer<Relay>;

test.before(async () => {
  upstream = await startUpstream();
  served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/api' }));
});

test.after(async () => {
  await served.close();
  await upstream.close();
});

const statusOf = (raw: string) => Number(raw.slice(9, 12));

test('CL.TE and TE.CL smuggling attempts get 400 and never reach the upstream', async () => {
  const before = upstream.requests.length;
  const attempts = [
    'POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n',
    'POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGET /api/smuggled HTTP/1.1\r\n\r\n0\r\n\r\n',
    'POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\nabcd',
    'POST /api/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    'POST /api/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
  ];
  for (const attempt of attempts) {
    const raw = await sendRaw(served.port, attempt, 1000);
    assert.is(statusOf(raw), 400, `${JSON.stringify(attempt.slice(0, 80))} → ${raw.split('\r\n')[0]}`);
  }
  assert.is(upstream.requests.length, before, 'the upstream saw none of them');
  assert.not.ok(upstream.requests.some((r) => r.url.includes('smuggled')));
});

test('a client Trailer header is not forwarded, and chunked trailers do not reach the upstream as headers', async () => {
  const before = upstream.requests.length;
  await sendRaw(
    served.port,
    'POST /api/t HTTP/1.1\r\nHost: gw\r\nTrailer: x-evil\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nbody\r\n0\r\nx-evil: 1\r\n\r\n',
  );
  const seen = upstream.requests[before]!;
  assert.is(seen.headers.trailer, undefined);
  assert.is(seen.headers['x-evil'], undefined);
  assert.is(seen.body.toString(), 'body');
});

test('1 000 headers and a 1 MB URL are refused with 431 by the server before the relay runs', async () => {
  const before = upstream.requests.length;
  let many = 'GET /api/h HTTP/1.1\r\nHost: gw\r\n';
  for (let i = 0; i < 1000; i++) many += `X-Header-${i}: value-${i}\r\n`;
  assert.is(statusOf(await sendRaw(served.port, `${many}\r\n`)), 431);
  const longUrl = `GET /api/${'a'.repeat(1024 * 1024)} HTTP/1.1\r\nHost: gw\r\n\r\n`;
  assert.is(statusOf(await sendRaw(served.port, longUrl)), 431);
  assert.is(upstream.requests.length, before);
});

test('no error body or log line carries an Authorization or Cookie value, or an internal address', async () => {
  const logger = memoryLogger();
  const port = await closedPort();
  const refused = await serveRelay(createRelay({ targetBaseUrl: `http://127.0.0.1:${port}`, logger, mountPath: '/api' }));
  const secretHeaders = { authorization: 'Bearer SECRET-TOKEN-123', cookie: 'sid=SECRET-COOKIE-456' };
  const bodies = [
    (await fetchRaw(`${refused.url}/api/x`, { headers: secretHeaders })).text,
    (await sendRaw(refused.port, 'GET /api/../x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer SECRET-TOKEN-123\r\nConnection: close\r\n\r\n')),
    (await fetchRaw(`${refused.url}/elsewhere`, { headers: secretHeaders })).text,
  ];
  const logged = JSON.stringify(logger.lines);
  for (const text of [...bodies, logged]) {
    assert.not.ok(text.includes('SECRET-TOKEN-123'), `leaked authorization: ${text.slice(0, 200)}`);
    assert.not.ok(text.includes('SECRET-COOKIE-456'), `leaked cookie: ${text.slice(0, 200)}`);
  }
  for (const body of bodies) assert.not.ok(body.includes(String(port)), 'no internal port in a body');
  await refused.close();
});

test.run();
