import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { close, fetchRaw, serveRelay, startUpstream, type RelayServer, type Upstream } from '@relay/testkit';
import { createRelay, type Relay, type RelayOptions, type Stage } from '../src/index.js';

// ClientInfo.clientAddress: the client behind trusted proxies, as nginx's realip (real_ip_recursive on)
// and Express's req.ip resolve it; ClientInfo.address stays the TCP peer.

let upstream: Upstream;
const fronts: Array<RelayServer<Relay>> = [];

/** Answers with what the stages saw: the peer, the resolved client, and the X-Forwarded-For the upstream got. */
const probe: Stage = {
  name: 'probe',
  wrap(next) {
    return async function probeStage(request) {
      const response = await next(request);
      const { address, clientAddress } = request.client;
      return { ...response, headers: { ...response.headers, 'x-peer': address, 'x-client': clientAddress, 'x-client-again': request.client.clientAddress } };
    };
  },
};

test.before(async () => {
  upstream = await startUpstream((req, res) => {
    res.setHeader('x-upstream-forwarded-for', req.headers['x-forwarded-for'] ?? '');
    res.end('ok');
  });
});

test.after(async () => {
  await Promise.all(fronts.map((front) => front.close()));
  await upstream.close();
});

async function front(options: Partial<RelayOptions> = {}): Promise<RelayServer<Relay>> {
  const served = await serveRelay(createRelay({ targetBaseUrl: upstream.url, stages: [probe], ...options }));
  fronts.push(served);
  return served;
}

interface Seen {
  peer: string;
  client: string;
  upstreamForwardedFor: string;
}

async function seen(url: string, forwardedFor?: string | string[], headers: Record<string, string> = {}): Promise<Seen> {
  const response = await fetchRaw(url, { headers: forwardedFor === undefined ? headers : { ...headers, 'x-forwarded-for': forwardedFor } });
  assert.is(response.status, 200);
  assert.is(response.headers['x-client-again'], response.headers['x-client'], 'a second read gives the same address');
  return {
    peer: String(response.headers['x-peer']),
    client: String(response.headers['x-client']),
    upstreamForwardedFor: String(response.headers['x-upstream-forwarded-for']),
  };
}

test('behind a trusted proxy, clientAddress is the address its X-Forwarded-For gives; address stays the peer', async () => {
  const served = await front({ trustProxy: ['loopback'] });
  const one = await seen(served.url, '203.0.113.7');
  assert.is(one.peer, '127.0.0.1');
  assert.is(one.client, '203.0.113.7');
  assert.is(one.upstreamForwardedFor, '203.0.113.7, 127.0.0.1', 'forwarding is unchanged');
  assert.is((await seen(served.url)).client, '127.0.0.1', 'no header: the peer');
  assert.is((await seen(served.url, '')).client, '127.0.0.1', 'an empty header: the peer');
});

test('an untrusted peer cannot choose its address: its X-Forwarded-For is never read', async () => {
  for (const trustProxy of [false, ['10.0.0.0/8'], ['::1']] as const) {
    const served = await front({ trustProxy: trustProxy as RelayOptions['trustProxy'] });
    const spoofed = await seen(served.url, '203.0.113.7');
    assert.is(spoofed.client, '127.0.0.1', JSON.stringify(trustProxy));
    assert.is(spoofed.peer, '127.0.0.1');
  }
});

test('several hops: read from the right past every trusted proxy, to the first address not trusted', async () => {
  const served = await front({ trustProxy: ['loopback', '10.0.0.0/8'] });
  // 198.51.100.1 is what the client wrote itself: only the hops to the right of the client are believed.
  assert.is((await seen(served.url, '198.51.100.1, 203.0.113.7, 10.0.0.1, 10.1.2.3')).client, '203.0.113.7');
  assert.is((await seen(served.url, '198.51.100.1, 203.0.113.7')).client, '203.0.113.7', 'the rightmost untrusted entry');
  // Several header lines are one list, in order.
  assert.is((await seen(served.url, ['198.51.100.1, 203.0.113.7', '10.0.0.1'])).client, '203.0.113.7');
  assert.is((await seen(served.url, ['203.0.113.7', '198.51.100.1'])).client, '198.51.100.1', 'the last line is the nearest hop');
  // Empty list elements are skipped (RFC 9110 §5.6.1).
  assert.is((await seen(served.url, ' 203.0.113.7 ,, 10.0.0.1 , ')).client, '203.0.113.7');
});

test('an all-trusted chain gives its leftmost address (trustProxy true trusts every hop)', async () => {
  const listed = await front({ trustProxy: ['loopback', '10.0.0.0/8'] });
  assert.is((await seen(listed.url, '10.0.0.5, 10.0.0.6')).client, '10.0.0.5');
  assert.is((await seen(listed.url, '127.0.0.2')).client, '127.0.0.2');
  const everyone = await front({ trustProxy: true });
  assert.is((await seen(everyone.url, '198.51.100.1, 203.0.113.7')).client, '198.51.100.1');
});

test('an entry that is not an IP address ends the walk: the last address accepted before it is the client', async () => {
  const served = await front({ trustProxy: ['loopback', '10.0.0.0/8'] });
  for (const garbage of ['unknown', '203.0.113.7:4711', '[2001:db8::1]', '[2001:db8::1]:443', '"203.0.113.7"', '203.0.113.007', '2001:db8::g', '_hidden', '203.0.113.7 198.51.100.1']) {
    assert.is((await seen(served.url, `198.51.100.1, ${garbage}`)).client, '127.0.0.1', `${garbage} next to the peer: the peer`);
    assert.is((await seen(served.url, `198.51.100.1, ${garbage}, 10.0.0.1`)).client, '10.0.0.1', `${garbage} behind a trusted hop: that hop`);
    assert.is((await seen(served.url, `${garbage}, 203.0.113.7, 10.0.0.1`)).client, '203.0.113.7', `${garbage} left of the client: never reached`);
  }
  const long = `${'x'.repeat(4000)}, 203.0.113.7`;
  assert.is((await seen(served.url, long)).client, '203.0.113.7');
});

test('IPv6 entries come out canonical, IPv4-mapped ones as IPv4, and are trusted by the same rules', async () => {
  const served = await front({ trustProxy: ['loopback', 'uniquelocal'] });
  assert.is((await seen(served.url, '2001:DB8:0:0::7')).client, '2001:db8::7');
  assert.is((await seen(served.url, '2001:db8::7, fd00::1, fd12:3456::2')).client, '2001:db8::7', 'unique-local hops are skipped');
  assert.is((await seen(served.url, 'fe80::1%eth0')).client, 'fe80::1', 'a zone id means nothing off its host');
  assert.is((await seen(served.url, '::ffff:203.0.113.7')).client, '203.0.113.7');
  assert.is((await seen(served.url, '::ffff:cb00:7107')).client, '203.0.113.7', 'the hexadecimal form too');
  assert.is((await seen(served.url, '203.0.113.7, ::ffff:10.0.0.1')).client, '203.0.113.7', 'a mapped trusted hop is skipped');
  assert.is((await seen(served.url, '203.0.113.7, ::1')).client, '203.0.113.7', 'IPv6 loopback is loopback');
});

test('over IPv6 and on a dual-stack listener the peer is matched as it is reported', async () => {
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [probe], trustProxy: ['loopback'] });
  await relay.startup();
  const servers: Server[] = [];
  try {
    const v6 = createServer(relay.handle);
    servers.push(v6);
    await new Promise<void>((resolve) => v6.listen(0, '::1', resolve));
    const overV6 = await seen(`http://[::1]:${(v6.address() as AddressInfo).port}/`, '2001:db8::7');
    assert.is(overV6.peer, '::1');
    assert.is(overV6.client, '2001:db8::7');
    const dual = createServer(relay.handle);
    servers.push(dual);
    await new Promise<void>((resolve) => dual.listen(0, '::', resolve));
    const mapped = await seen(`http://127.0.0.1:${(dual.address() as AddressInfo).port}/`, '203.0.113.7');
    assert.is(mapped.peer, '127.0.0.1', '::ffff:127.0.0.1 is unmapped, then trusted as loopback');
    assert.is(mapped.client, '203.0.113.7');
  } finally {
    await Promise.all(servers.map(close));
    await relay.shutdown();
  }
});

test('the list read is the one the relay kept: Connection-listed X-Forwarded-For is gone, and stages cannot change it', async () => {
  const served = await front({ trustProxy: ['loopback'] });
  const listed = await seen(served.url, '203.0.113.7', { connection: 'x-forwarded-for' });
  assert.is(listed.upstreamForwardedFor, '127.0.0.1');
  assert.is(listed.client, '127.0.0.1');
  const rewriter: Stage = {
    name: 'rewriter',
    wrap(next) {
      return function rewriterStage(request) {
        request.headers['x-forwarded-for'] = '198.51.100.99';
        return next(request);
      };
    },
  };
  const rewritten = await front({ trustProxy: ['loopback'], stages: [rewriter, probe] });
  assert.is((await seen(rewritten.url, '203.0.113.7')).client, '203.0.113.7');
});

test('relay.fetch resolves it from the address it is given', async () => {
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [probe], trustProxy: ['loopback'] });
  try {
    const request = () => new Request('http://gw.example/x', { headers: { 'x-forwarded-for': '203.0.113.7' } });
    const trusted = await relay.fetch(request(), { address: '127.0.0.1' });
    assert.is(trusted.headers.get('x-client'), '203.0.113.7');
    await trusted.arrayBuffer();
    const untrusted = await relay.fetch(request(), { address: '198.51.100.1' });
    assert.is(untrusted.headers.get('x-client'), '198.51.100.1');
    await untrusted.arrayBuffer();
  } finally {
    await relay.shutdown();
  }
});

test.run();
