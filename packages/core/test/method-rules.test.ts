// Found by review s39 (attack run): methods an attacker can choose. (1) An HTTP/2 client may send
// any token as :method, lower case included; methods are case-sensitive (RFC 9110 §9.1: `delete`
// is not DELETE). node:http's parser refuses a lower-case method on HTTP/1.1 (400), but over the
// HTTP/2 front it reaches the stages as `delete` and node's http.request upper-cases it on the way
// out: the upstream runs DELETE while every stage (an auth or read-only rule, routing's `when`
// method condition) saw a different method and let it through. nginx refuses such a :method (400).
// (2) Max-Forwards (RFC 9110 §7.6.2): an intermediary MUST NOT forward a TRACE or OPTIONS whose
// Max-Forwards is 0 (it answers as the final recipient) and MUST decrement it otherwise.
import http2 from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { h2FrontSession } from './http2-helpers.js';
import { createRelay, RelayError, type Stage } from '../src/index.js';

const test = suite('methods: HTTP/2 case, Max-Forwards');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

/** A read-only gateway: anything but GET/HEAD/OPTIONS is refused before the upstream. */
const readOnly: Stage = {
  name: 'read-only',
  wrap: (next) =>
    function readOnlyStage(request) {
      if (['DELETE', 'PUT', 'POST', 'PATCH'].includes(request.method)) throw new RelayError('ERR_BAD_REQUEST', 'read-only gateway');
      return next(request);
    },
};

function h2Status(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<number | string> {
  return new Promise((resolve) => {
    const stream = session.request(headers, { endStream: true });
    stream.on('response', (h) => resolve(h[':status'] as number));
    stream.on('error', (error) => resolve(error.message));
    stream.on('close', () => resolve(`closed, rst ${stream.rstCode}`));
    stream.resume();
  });
}

test('HTTP/2 :method "delete" never reaches the upstream as DELETE past a stage that refuses DELETE', async () => {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const session = await h2FrontSession(closers, createRelay({ targetBaseUrl: upstream.url, stages: [readOnly] }));
  assert.is(await h2Status(session, { ':method': 'DELETE', ':path': '/users/1' }), 400, 'DELETE is refused by the stage');
  const statuses: Array<number | string> = [];
  for (const method of ['delete', 'Delete', 'put', 'post']) statuses.push(await h2Status(session, { ':method': method, ':path': '/users/1' }));
  const reached = upstream.requests.map((seen) => seen.method);
  assert.equal(reached.filter((method) => ['DELETE', 'PUT', 'POST'].includes(method)), [], `the upstream ran ${JSON.stringify(reached)} (client statuses ${JSON.stringify(statuses)})`);
});

test('TRACE and OPTIONS with Max-Forwards: 0 are not forwarded; Max-Forwards: 3 reaches the upstream as 2 (RFC 9110 §7.6.2)', async () => {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url }));
  closers.push(() => served.close());
  const port = Number(new URL(served.url).port);
  const zero: string[] = [];
  for (const method of ['TRACE', 'OPTIONS']) {
    const answer = await sendRaw(port, `${method} /x HTTP/1.1\r\nHost: gw\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n`);
    zero.push(`${method}: ${answer.split('\r\n')[0]}`);
  }
  assert.equal(upstream.requests.map((seen) => `${seen.method} max-forwards ${seen.headers['max-forwards']}`), [], `Max-Forwards: 0 was forwarded (client got ${JSON.stringify(zero)})`);
  // The relay answers as the final recipient: OPTIONS 200, TRACE 405 (it never reflects a request); both with Allow.
  assert.equal(zero, ['TRACE: HTTP/1.1 405 Method Not Allowed', 'OPTIONS: HTTP/1.1 200 OK']);
  await sendRaw(port, 'OPTIONS /x HTTP/1.1\r\nHost: gw\r\nMax-Forwards: 3\r\nConnection: close\r\n\r\n');
  assert.is(upstream.requests.at(-1)?.headers['max-forwards'], '2', 'decremented before forwarding');
});

test.run();
