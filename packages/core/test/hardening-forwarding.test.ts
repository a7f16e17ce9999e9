import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay, type RelayOptions } from '../src/index.js';
import { unmapIPv4 } from '../src/request/trust-proxy.js';

// Issue 13, items 12, 17 and 18: trustProxy, IPv4-mapped addresses, choosing the forwarding headers.

let upstream: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await Promise.all(fronts.map((front) => front.close()));
  await upstream.close();
});

async function front(options: Partial<RelayOptions> = {}): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, mountPath: '/auth', ...options }));
  fronts.push(served);
  return served;
}

const spoofed = {
  host: 'public.example:8443',
  forwarded: 'for=6.6.6.6;proto=https',
  'x-real-ip': '6.6.6.6',
  'true-client-ip': '6.6.6.6',
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'evil.example',
  'x-forwarded-port': '443',
  'x-forwarded-prefix': '/outer',
  'x-forwarded-server': 'evil',
};

async function seenHeaders(served: RelayServer<Relay>, headers: Record<string, string> = spoofed): Promise<Record<string, string | undefined>> {
  const response = await fetchRaw(`${served.url}/auth/echo`, { headers });
  assert.is(response.status, 200);
  return JSON.parse(response.text).headers;
}

test('item 12: by default (an edge gateway) every client-sent forwarding header is replaced by the relay\'s own', async () => {
  const served = await front();
  const seen = await seenHeaders(served);
  assert.is(seen.forwarded, undefined);
  assert.is(seen['x-real-ip'], undefined);
  assert.is(seen['true-client-ip'], undefined);
  assert.is(seen['x-forwarded-server'], undefined);
  assert.is(seen['x-forwarded-for'], '127.0.0.1');
  assert.is(seen['x-forwarded-proto'], 'http');
  assert.is(seen['x-forwarded-host'], 'public.example:8443');
  assert.is(seen['x-forwarded-port'], String(served.port));
  assert.is(seen['x-forwarded-prefix'], '/auth');
});

test('item 12: trustProxy true keeps a proxy\'s values and appends to its X-Forwarded-For', async () => {
  const seen = await seenHeaders(await front({ trustProxy: true }));
  assert.is(seen.forwarded, 'for=6.6.6.6;proto=https');
  assert.is(seen['x-real-ip'], '6.6.6.6');
  assert.is(seen['true-client-ip'], '6.6.6.6');
  assert.is(seen['x-forwarded-for'], '6.6.6.6, 127.0.0.1');
  assert.is(seen['x-forwarded-proto'], 'https');
  assert.is(seen['x-forwarded-host'], 'evil.example');
  assert.is(seen['x-forwarded-port'], '443');
  assert.is(seen['x-forwarded-prefix'], '/outer/auth', 'the proxy\'s prefix goes before the mount path');
});

test('item 12: a trust list matches the immediate peer by address, CIDR range or name', async () => {
  for (const trusted of [['127.0.0.1'], ['127.0.0.0/8'], ['10.0.0.0/8', 'loopback'], ['::1', '127.0.0.1/32']]) {
    const seen = await seenHeaders(await front({ trustProxy: trusted }));
    assert.is(seen['x-forwarded-for'], '6.6.6.6, 127.0.0.1', JSON.stringify(trusted));
  }
  for (const untrusted of [[], ['10.0.0.0/8'], ['uniquelocal', '::1'], ['128.0.0.1']]) {
    const seen = await seenHeaders(await front({ trustProxy: untrusted }));
    assert.is(seen['x-forwarded-for'], '127.0.0.1', JSON.stringify(untrusted));
    assert.is(seen['x-real-ip'], undefined);
  }
});

test('item 12: a bad trustProxy entry throws, naming it', () => {
  const named = (text: string) => (error: Error) => error instanceof TypeError && error.message.includes(text);
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', trustProxy: ['10.0.0.0/8', 'ten'] }), named('trustProxy[1]'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', trustProxy: ['10.0.0.0/33'] }), named('trustProxy[0]'));
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', trustProxy: '10.0.0.0/8' as never }), named('trustProxy'));
});

test('item 17: on a dual-stack listener X-Forwarded-For gets 127.0.0.1, never ::ffff:127.0.0.1', async () => {
  const relay = createRelay({ targetBaseUrl: upstream.url });
  await relay.startup();
  const server: Server = createServer(relay.handle);
  await new Promise<void>((resolve) => server.listen(0, '::', resolve));
  const port = (server.address() as AddressInfo).port;
  let remote = '';
  server.once('request', (req) => {
    remote = req.socket.remoteAddress ?? '';
  });
  const seen = JSON.parse((await fetchRaw(`http://127.0.0.1:${port}/echo`)).text).headers;
  assert.is(remote, '::ffff:127.0.0.1', 'the listener is dual-stack');
  assert.is(seen['x-forwarded-for'], '127.0.0.1');
  assert.is(unmapIPv4('::ffff:203.0.113.7'), '203.0.113.7');
  assert.is(unmapIPv4('::ffff:abcd'), '::ffff:abcd');
  assert.is(unmapIPv4('2001:db8::1'), '2001:db8::1');
  await close(server);
  await relay.shutdown();
});

test('item 18: forwarded false writes none; an object chooses; X-Forwarded-Port is sent', async () => {
  const none = await seenHeaders(await front({ forwarded: false }));
  for (const name of ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-prefix']) {
    assert.is(none[name], undefined, name);
  }
  const some = await seenHeaders(await front({ forwarded: { port: false, prefix: false } }));
  assert.is(some['x-forwarded-port'], undefined);
  assert.is(some['x-forwarded-prefix'], undefined);
  assert.is(some['x-forwarded-for'], '127.0.0.1');
  assert.is(some['x-forwarded-proto'], 'http');
  // With a trusted peer and a header switched off, the proxy's value passes untouched.
  const kept = await seenHeaders(await front({ trustProxy: true, forwarded: { for: false } }));
  assert.is(kept['x-forwarded-for'], '6.6.6.6');
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', forwarded: { prot: true } as never }), /forwarded: unknown option "prot" \(did you mean "proto"\?/);
  assert.throws(() => createRelay({ targetBaseUrl: 'http://h', forwarded: { port: 'no' } as never }), /forwarded\.port must be a boolean/);
});

test.run();
