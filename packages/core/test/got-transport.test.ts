import { lookup } from 'node:dns';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fetchRaw, memoryLogger, serveRelay, startUpstream } from '@relay/testkit';
import { gotTransport, type GotTransportOptions } from '@relay/core/got';
import { createRelay } from '../src/index.js';

function named(type: ErrorConstructor, option: string) {
  return (error: Error) => error instanceof type && error.message.includes(option);
}

test('options are checked when gotTransport is called: errors name the option', () => {
  assert.throws(() => gotTransport({ maxSockets: 0 }), named(RangeError, 'maxSockets'));
  assert.throws(() => gotTransport({ maxFreeSockets: -1 }), named(RangeError, 'maxFreeSockets'));
  assert.throws(() => gotTransport({ idleTimeout: Number.NaN }), named(TypeError, 'idleTimeout'));
  assert.throws(() => gotTransport({ hooks: { afterResponse: [] } } as unknown as GotTransportOptions), named(TypeError, 'hooks.afterResponse'));
  assert.throws(() => gotTransport({ hooks: { beforeRequest: 'x' } } as unknown as GotTransportOptions), named(TypeError, 'hooks.beforeRequest'));
  assert.throws(() => gotTransport({ dnsCache: 'yes' } as unknown as GotTransportOptions), named(TypeError, 'dnsCache'));
  assert.is(gotTransport().name, 'got');
});

test('a beforeRequest hook runs for every request and can sign it', async () => {
  const upstream = await startUpstream();
  let calls = 0;
  const transport = gotTransport({
    hooks: {
      beforeRequest: [
        (options) => {
          calls++;
          options.headers['x-signature'] = `signed-${calls}`;
        },
      ],
    },
  });
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, transport }));
  await fetchRaw(`${served.url}/a`);
  await fetchRaw(`${served.url}/b`);
  assert.equal(
    upstream.requests.map((r) => r.headers['x-signature']),
    ['signed-1', 'signed-2'],
  );
  await served.close();
  await upstream.close();
});

test('dnsCache is handed to got: its lookup resolves the target host name', async () => {
  const upstream = await startUpstream();
  const looked: string[] = [];
  const dnsCache = {
    lookup(hostname: string, options: object, callback: (...args: unknown[]) => void) {
      looked.push(hostname);
      lookup(hostname, { ...options, family: 4 }, callback as never);
    },
  };
  const transport = gotTransport({ dnsCache: dnsCache as unknown as GotTransportOptions['dnsCache'] });
  const served = await serveRelay(createRelay({ targetBaseUrl: `http://localhost:${upstream.port}`, transport }));
  assert.is((await fetchRaw(`${served.url}/x`)).status, 200);
  assert.ok(looked.includes('localhost'), `lookups: ${looked.join(', ')}`);
  await served.close();
  await upstream.close();
});

test('got errors are logged with the relay code: a refused connection is ERR_UPSTREAM_UNREACHABLE, no got wording in the body', async () => {
  const upstream = await startUpstream();
  const url = upstream.url;
  await upstream.close();
  const logger = memoryLogger();
  const served = await serveRelay(createRelay({ targetBaseUrl: url, transport: gotTransport(), logger }));
  const response = await fetchRaw(`${served.url}/x`);
  assert.is(response.status, 502);
  assert.not.match(response.text, /got|RequestError|ECONNREFUSED/);
  assert.ok(logger.lines.some((l) => l.fields.code === 'ERR_UPSTREAM_UNREACHABLE'));
  await served.close();
});

test.run();
