import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay, type RelayOptions } from '@relay/core';
import { close, fetchRaw, memoryLogger, serveRelay, startUpstream, type Upstream } from '@relay/testkit';
import { rateLimit } from '../src/index.js';

// key 'client' counts by request.client.clientAddress: the client behind a trusted load balancer,
// never an address an untrusted peer wrote.

let upstream: Upstream;

test.before(async () => {
  upstream = await startUpstream();
});

test.after(async () => {
  await upstream.close();
});

/** A relay with a limit of 2 per minute per client, served on 127.0.0.1; `send` returns each status. */
async function limited(options: Partial<RelayOptions>) {
  const logger = memoryLogger();
  const served = await serveRelay(
    createRelay({ targetBaseUrl: upstream.url, logger, ...options, stages: [rateLimit({ name: 'per-client', points: 2, duration: 60_000 })] }),
  );
  const send = async (forwardedFor?: string): Promise<number> =>
    (await fetchRaw(`${served.url}/x`, { headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } })).status;
  return { served, logger, send };
}

test('behind a trusted proxy, each client has its own bucket, not the proxy\'s', async () => {
  const { served, logger, send } = await limited({ trustProxy: ['loopback'] });
  try {
    assert.equal([await send('203.0.113.7'), await send('203.0.113.7'), await send('203.0.113.7')], [200, 200, 429]);
    assert.equal([await send('203.0.113.8'), await send('203.0.113.8'), await send('203.0.113.8')], [200, 200, 429], 'a second client is not refused for the first one\'s requests');
    assert.is(await send(), 200, 'the proxy\'s own requests (no header) count as the proxy');
    const refused = logger.lines.filter((line) => line.message.startsWith('rate limit exceeded'));
    assert.is(refused[0]?.fields.key, '203.0.113.7', 'the log names the client, not the proxy');
  } finally {
    await served.close();
  }
});

test('IPv6 clients behind a trusted proxy count by their /64, as a direct IPv6 client does', async () => {
  const { served, send } = await limited({ trustProxy: ['loopback'] });
  try {
    assert.equal([await send('2001:db8:1:2::1'), await send('2001:db8:1:2:ffff::9'), await send('2001:DB8:1:2::77')], [200, 200, 429]);
    assert.is(await send('2001:db8:1:3::1'), 200, 'another /64, another bucket');
    assert.is(await send('::ffff:203.0.113.7'), 200, 'an IPv4-mapped client counts as its IPv4 address…');
    assert.is(await send('203.0.113.7'), 200);
    assert.is(await send('203.0.113.7'), 429, '…in the same bucket');
  } finally {
    await served.close();
  }
});

test('spoofing does not work: an untrusted peer is counted by its socket address whatever X-Forwarded-For it sends', async () => {
  for (const trustProxy of [false, ['10.0.0.0/8']]) {
    const { served, send } = await limited({ trustProxy: trustProxy as RelayOptions['trustProxy'] });
    try {
      const statuses = [await send('203.0.113.1'), await send('203.0.113.2'), await send('203.0.113.3'), await send(), await send('10.0.0.1')];
      assert.equal(statuses, [200, 200, 429, 429, 429], `trustProxy ${JSON.stringify(trustProxy)}`);
    } finally {
      await served.close();
    }
  }
  // One relay, two peers: ::1 is the trusted proxy, 127.0.0.1 (the same listener, dual-stack) is not.
  const relay = createRelay({ targetBaseUrl: upstream.url, trustProxy: ['::1'], stages: [rateLimit({ points: 2, duration: 60_000 })] });
  await relay.startup();
  const server = createServer(relay.handle);
  try {
    await new Promise<void>((resolve) => server.listen(0, '::', resolve));
    const port = (server.address() as AddressInfo).port;
    const from = async (host: string, forwardedFor: string) => (await fetchRaw(`http://${host}:${port}/x`, { headers: { 'x-forwarded-for': forwardedFor } })).status;
    const spoofer = [await from('127.0.0.1', '203.0.113.1'), await from('127.0.0.1', '203.0.113.2'), await from('127.0.0.1', '203.0.113.3')];
    assert.equal(spoofer, [200, 200, 429], 'the untrusted peer has one bucket, its own');
    const behindProxy = [await from('[::1]', '203.0.113.1'), await from('[::1]', '203.0.113.2'), await from('[::1]', '203.0.113.3')];
    assert.equal(behindProxy, [200, 200, 200], 'the trusted proxy\'s clients, one bucket each, none spent by the spoofer');
  } finally {
    await close(server);
    await relay.shutdown();
  }
});

test('behind a trusted proxy, what the client writes to the left of the proxy\'s entry buys no new bucket', async () => {
  const { served, send } = await limited({ trustProxy: ['loopback', '10.0.0.0/8'] });
  try {
    // The proxy appends the address it saw; the entries left of it are the client's own words.
    const statuses = [await send('198.51.100.1, 203.0.113.7'), await send('198.51.100.2, 203.0.113.7'), await send('unknown, 203.0.113.7, 10.0.0.1'), await send('10.9.9.9, 203.0.113.7')];
    assert.equal(statuses, [200, 200, 429, 429]);
    assert.is(await send('198.51.100.1, 203.0.113.8'), 200, 'another client behind the same proxy still has its tokens');
  } finally {
    await served.close();
  }
});

test.run();
