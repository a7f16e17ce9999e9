// A TRACE or OPTIONS with Max-Forwards: 0 goes through the stages like any request (an auth rule
// refuses it, an access log sees it) and is answered where it would leave for the upstream, never
// forwarded (RFC 9110 §7.6.2). Found by review s39b: the answer came before every stage.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sendRaw, serveRelay, startUpstream } from '@relay/testkit';
import { createRelay, RelayError, type Stage } from '../src/index.js';

const test = suite('review s39b: Max-Forwards and the stages');
const closers: Array<() => Promise<void> | void> = [];
test.after.each(async () => {
  for (const closeOne of closers.splice(0).reverse()) await closeOne();
});

test('an OPTIONS with Max-Forwards: 0 goes through the stages (an auth stage refuses it, a counting stage sees it) and is still not forwarded', async () => {
  const upstream = await startUpstream();
  closers.push(() => upstream.close());
  const seen: string[] = [];
  const counting: Stage = {
    name: 'count',
    wrap: (next) =>
      function count(request) {
        seen.push(`${request.method} ${request.headers['max-forwards']}`);
        return next(request);
      },
  };
  const auth: Stage = {
    name: 'auth',
    wrap: (next) =>
      function authStage(request) {
        if (request.headers.authorization === undefined) throw new RelayError('ERR_BAD_REQUEST', 'no credentials');
        return next(request);
      },
  };
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [counting, auth] }));
  closers.push(() => served.close());
  const port = Number(new URL(served.url).port);
  const refused = await sendRaw(port, 'OPTIONS /admin HTTP/1.1\r\nHost: gw\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n');
  const allowed = await sendRaw(port, 'TRACE /x HTTP/1.1\r\nHost: gw\r\nMax-Forwards: 0\r\nAuthorization: Basic eDp5\r\nConnection: close\r\n\r\n');
  assert.is(upstream.requests.length, 0, 'Max-Forwards: 0 is never forwarded');
  assert.equal(seen, ['OPTIONS 0', 'TRACE 0'], `the stages saw ${JSON.stringify(seen)}`);
  assert.is(refused.split('\r\n')[0], 'HTTP/1.1 400 Bad Request', `the auth stage was passed: ${refused.split('\r\n')[0]}`);
  assert.is(allowed.split('\r\n')[0], 'HTTP/1.1 405 Method Not Allowed');
});

test.run();
