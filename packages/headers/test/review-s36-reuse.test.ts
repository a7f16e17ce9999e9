// Review s36 (issue 23, reuse): headerRules() used in a plain node:http proxy on a default
// (dual-stack) listener, compared with a relay running headers() on the same kind of listener;
// and the per-call `hop` facts checked as docs/reuse.md and packages/headers/README.md promise.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRelay } from '@relay/core';
import { close, fetchRaw, startUpstream } from '@relay/testkit';
import { headerRules, headers } from '@relay/headers';

/** Listens on the default address (`::`, dual-stack, as `server.listen(port)` does) and returns the port. */
async function listenDefault(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, resolve));
  return (server.address() as AddressInfo).port;
}

test('headerRules forwarded: an IPv4 client of a dual-stack server gets for=<IPv4>, as the headers() stage writes it', async () => {
  // Issue 23: "the plain functions give the same results as the stages on the same inputs". A relay
  // on the same listener writes the IPv4-mapped peer as IPv4 (core unmapIPv4, issue 13: "X-Forwarded-For
  // gets IPv4-mapped addresses written as IPv4"); RFC 7239 §6 node: an IPv4 address is written as such.
  const upstream = await startUpstream();
  const relay = createRelay({ targetBaseUrl: upstream.url, stages: [headers({ forwarded: true })] });
  await relay.startup();
  const relayServer = http.createServer(relay.handle);
  const rules = headerRules({ forwarded: true });
  // A hand-written node:http proxy using the plain function, as docs/reuse.md suggests for any proxy.
  const plainServer = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const outgoing = rules.request(req.headers, { address: req.socket.remoteAddress ?? '', host: req.headers.host ?? '', scheme: 'http' });
    const forward = http.request(`${upstream.url}${req.url}`, { method: req.method, headers: outgoing, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(forward);
  });
  try {
    const relayPort = await listenDefault(relayServer);
    const plainPort = await listenDefault(plainServer);
    const viaRelay = JSON.parse((await fetchRaw(`http://127.0.0.1:${relayPort}/a`)).text) as { headers: Record<string, string> };
    const viaPlain = JSON.parse((await fetchRaw(`http://127.0.0.1:${plainPort}/a`)).text) as { headers: Record<string, string> };
    assert.is(viaRelay.headers.forwarded, `for=127.0.0.1;host="127.0.0.1:${relayPort}";proto=http`, 'the stage');
    assert.is(viaPlain.headers.forwarded, `for=127.0.0.1;host="127.0.0.1:${plainPort}";proto=http`, 'the plain function, same input');
  } finally {
    await Promise.all([close(relayServer), close(plainServer)]);
    await relay.shutdown({ timeout: 1000 });
    await upstream.close();
  }
});

test('headerRules forwarded: a hop address that is not an IP address is refused (TypeError naming address), never written unquoted', () => {
  // RFC 7239 §4/§6: a node is an IP address, "unknown" or an obfuscated token; any other value must be a
  // quoted-string. An unquoted ";host=…" would add parameters of the client's choosing. docs/reuse.md:
  // the plain functions reject bad input "with the same errors (a TypeError or RangeError naming the option)".
  // Express's req.ip with `trust proxy` set to a hop count is the X-Forwarded-For text as sent.
  const rules = headerRules({ forwarded: true });
  let result: string | undefined;
  let error: unknown = null;
  try {
    result = rules.request({}, { address: '203.0.113.7;host=evil.example;proto=https', host: 'gw.example', scheme: 'http' }).forwarded as string;
  } catch (caught) {
    error = caught;
  }
  if (error === null) {
    assert.not.ok(/for=203\.0\.113\.7;host=evil/.test(result ?? ''), `the address was written as a bare token: ${result}`);
  } else {
    assert.instance(error, TypeError);
    assert.match(String((error as Error).message), /address/);
  }
});

test('headerRules: the input record is never modified, also with drop lists and extras (regression)', () => {
  // packages/headers/README.md: "returning new headers and never modifying its input".
  const rules = headerRules({ dropResponse: ['x-debug'], extraResponse: { 'x-frame-options': 'DENY' } });
  const input = { 'X-Debug': '1', 'Content-Type': 'text/plain', 'set-cookie': ['a=1'] };
  const output = rules.response(input);
  assert.equal(input, { 'X-Debug': '1', 'Content-Type': 'text/plain', 'set-cookie': ['a=1'] });
  assert.equal(output, { 'content-type': 'text/plain', 'set-cookie': ['a=1'], 'x-frame-options': 'DENY' });
  assert.is.not(output['set-cookie'], input['set-cookie'], 'no array shared with the input');
});

test.run();
