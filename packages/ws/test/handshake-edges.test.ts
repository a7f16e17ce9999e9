// The handshake as an operator sees it: bad 101s, refusals, hop-by-hop headers, paths.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, sendRaw, waitFor } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { acceptKey, closed, openClient, refusedHandshake, startGateway, startRawUpstream, startWsUpstream } from './helpers.js';


/** A raw upstream that answers each handshake with `answer(key)` and keeps the connection open. */
function startAnswering(answer: (key: string) => string) {
  return startRawUpstream((socket, key) => socket.write(answer(key)));
}

const modes = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
] as const;

const bad101: Array<[string, (key: string) => string]> = [
  ['no Sec-WebSocket-Accept', () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
  ['a wrong Sec-WebSocket-Accept', () => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey('AAAAAAAAAAAAAAAAAAAAAA==')}\r\n\r\n`],
  ['no Connection: Upgrade (RFC 6455 §4.1: the client MUST fail it)', (key) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`],
];

for (const [mode, policy] of modes) {
  for (const [name, answer] of bad101) {
    test(`${mode}: an upstream 101 with ${name} never completes: 502`, async () => {
      const upstream = await startAnswering(answer);
      const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(policy), logger: memoryLogger() });
      let status = 0;
      try {
        status = (await refusedHandshake(`${gateway.url}/chat`)).status;
      } catch (error) {
        status = -1; // the client itself failed it (not a relay answer)
      }
      assert.is(status, 502, `the client gets 502 (got ${status})`);
      await gateway.close();
      await upstream.close();
    });
  }

  test(`${mode}: an upstream 503 with Retry-After and a chunked body, and a 302 with Location, reach the client as they are`, async () => {
    const upstream = await startAnswering(() => 'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nbusy!\r\n0\r\n\r\n');
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(policy), logger: memoryLogger() });
    const refusal = await refusedHandshake(`${gateway.url}/chat`);
    assert.is(refusal.status, 503);
    assert.is(refusal.headers['retry-after'], '7');
    assert.is(refusal.body, 'busy!');
    await gateway.close();
    await upstream.close();
    const moved = await startAnswering(() => 'HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n');
    const gateway2 = await startGateway({ targetBaseUrl: moved.url, websocket: websocket(policy), logger: memoryLogger() });
    const redirect = await refusedHandshake(`${gateway2.url}/chat`);
    assert.is(redirect.status, 302);
    assert.is(redirect.headers.location, '/elsewhere');
    assert.is(moved.heads.length, 1, 'the relay does not follow the redirect itself');
    await gateway2.close();
    await moved.close();
  });

  test(`${mode}: hop-by-hop headers are stripped both ways; Set-Cookie and end-to-end headers pass`, async () => {
    const upstream = await startWsUpstream({
      headers: ['Set-Cookie: sid=1; HttpOnly', 'X-Internal-Hop: secret', 'Keep-Alive: timeout=5', 'X-App: yes'],
    });
    // The upstream's 101 names X-Internal-Hop in its Connection header.
    upstream.wss.on('headers', (lines: string[]) => {
      const index = lines.findIndex((line) => /^connection:/i.test(line));
      lines[index] = 'Connection: Upgrade, X-Internal-Hop';
    });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(policy), logger: memoryLogger() });
    // A raw client, so its Connection header is sent as written (ws sets its own).
    const raw = await sendRaw(
      gateway.port,
      'GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Client-Hop\r\nX-Client-Hop: private\r\n' +
        'Keep-Alive: 5\r\nProxy-Authorization: Basic eDp5\r\nCookie: a=1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      500,
    );
    const head = raw.split('\r\n\r\n')[0]!.toLowerCase();
    assert.match(head, /^http\/1\.1 101/);
    const seen = upstream.handshakes[0]!.headers;
    assert.is(seen['x-client-hop'], undefined, 'a header the client named in Connection does not go upstream');
    assert.is(seen['keep-alive'], undefined);
    assert.is(seen['proxy-authorization'], undefined);
    assert.is(seen.cookie, 'a=1');
    assert.not.match(head, /x-internal-hop/, 'a header the upstream named in Connection does not reach the client');
    assert.not.match(head, /keep-alive/);
    assert.match(head, /set-cookie: sid=1; httponly/);
    assert.match(head, /x-app: yes/);
    assert.ok(await waitFor(() => upstream.sockets.size === 0, 5_000));
    await gateway.close();
    await upstream.close();
  });
}

test('paths: a handshake never reaches outside the mount and the upstream prefix', async () => {
  const upstream = await startWsUpstream();
  const gateway = await startGateway({ targetBaseUrl: `${upstream.url}/svc`, upstreamPrefix: '/chat', mountPath: '/ws', websocket: websocket(), logger: memoryLogger() });
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const paths = ['/ws/../admin', '/ws/room/../../admin', '/ws/%2e%2e/admin', '/ws/%2E%2e%2fadmin', '/ws%2f..%2fadmin', '/ws/..%5cadmin', '/wsadmin', '/ws/./../admin', '//ws/../admin'];
  for (const path of paths) {
    const raw = await sendRaw(
      gateway.port,
      `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(raw)?.[1]);
    if (status === 101) {
      const seen = upstream.handshakes.at(-1)!.url!;
      assert.ok(seen.startsWith('/svc/chat/') && !/\.\.|%2e|%2f|%5c/i.test(seen), `${path} reached ${seen}`);
    } else {
      assert.ok(status >= 400 && status < 500, `${path}: ${status}`);
    }
  }
  for (const hs of upstream.handshakes) assert.ok(hs.url!.startsWith('/svc/chat'), `upstream saw ${hs.url}`);
  assert.ok(await waitFor(() => true, 10));
  await gateway.close();
  await upstream.close();
});

test('a client that offers subprotocols gets exactly the upstream’s choice, in both modes', async () => {
  for (const [, policy] of modes) {
    const upstream = await startWsUpstream({ handleProtocols: (offered) => (offered.has('v2.chat') ? 'v2.chat' : false) });
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(policy), logger: memoryLogger() });
    const client = await openClient(`${gateway.url}/chat`, ['v1.chat', 'v2.chat']);
    assert.is(client.protocol, 'v2.chat');
    client.close();
    await closed(client);
    await gateway.close();
    await upstream.close();
  }
});

test.run();
