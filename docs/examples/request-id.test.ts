// docs/stages.md and docs/testing.md, "Testing a stage alone": a fake `next`, stageContext() and
// a request value; no relay, no sockets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClientInfo, stageContext, type ProxyRequest } from '@relay/core';
import { requestId } from './request-id.js';

function fakeRequest(headers: ProxyRequest['headers'] = {}): ProxyRequest {
  const client = new ClientInfo({ address: '127.0.0.1', scheme: 'http', host: 'gw', mountPath: '', originalUrl: '/x' });
  return { method: 'GET', path: '/x', headers, body: null, replayBody: null, attempt: 1, client };
}

const handler = requestId().wrap(
  async (request) => ({ status: 200, statusMessage: '', headers: { echo: String(request.headers['x-request-id']) }, body: null }),
  stageContext(),
);

test('adds a request id when the client sent none, and keeps the one it sent', async () => {
  assert.match(String((await handler(fakeRequest())).headers.echo), /^[0-9a-f-]{36}$/);
  assert.is((await handler(fakeRequest({ 'x-request-id': 'abc' }))).headers.echo, 'abc');
});

test('a bad option throws when the stage is built', () => {
  assert.throws(() => requestId({ header: 'bad header' }), /header must be a header name/);
});

test.run();
