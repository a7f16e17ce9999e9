// Issue 13 item 13: sessions have a finite liveness rule by default. The rule is an idle timeout,
// as Envoy's `stream_idle_timeout` (5 min by default, applied to upgraded streams) and nginx's
// `proxy_read_timeout` do it: a session with no frame either way for `idleTimeout` is closed 1001.
import type { Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor } from '@relay/testkit';
import type { TransportConfig } from '@relay/core/transport';
import { websocket } from '../src/index.js';
import type { WebSocketBinding } from '../src/websocket.js';
import { closed, nextPeer, openClient, startGateway, startWsUpstream } from './helpers.js';

const config: TransportConfig = {
  target: { protocol: 'http:', hostname: '127.0.0.1', port: 1, host: '127.0.0.1:1', origin: 'http://127.0.0.1:1', basePath: '' },
  timeouts: { connect: 1_000, read: 1_000, write: 1_000, pool: 1_000 },
  tls: {},
  logger: memoryLogger(),
};

test('by default a session is closed after 5 minutes without a frame either way (never "no timeout")', () => {
  const binding = websocket().bind(config) as WebSocketBinding;
  assert.is(binding.settings.idleTimeout, 5 * 60_000);
  const off = websocket({ idleTimeout: 0 }).bind(config) as WebSocketBinding;
  assert.is(off.settings.idleTimeout, 0, 'still possible to switch off explicitly');
});

/** Both session modes: transparent (the default) and terminating (a pass-through message hook). */
const modes = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
] as const;

for (const [mode, policy] of modes) {
  test(`${mode}: a silent dead client (vanished without a FIN, never answers) is closed within idleTimeout + closeTimeout`, async () => {
    const upstream = await startWsUpstream();
    const logger = memoryLogger();
    const idleTimeout = 1_000;
    const closeTimeout = 1_000;
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket({ idleTimeout, closeTimeout, ...policy }), logger });
    const peerReady = nextPeer(upstream);
    const client = await openClient(`${gateway.url}/quiet`);
    const peer = await peerReady;
    const peerEnd = closed(peer);
    // The client's network is gone: it neither reads nor sends anything, and no FIN or RST arrives.
    (client as unknown as { _socket: Socket })._socket.pause();
    const silentSince = Date.now();
    assert.equal(await peerEnd, { code: 1001, reason: 'idle timeout' }, 'the upstream is told why');
    assert.ok(await waitFor(() => gateway.sockets.size === 0, idleTimeout + closeTimeout + 10_000), 'the dead client’s connection is destroyed');
    const took = Date.now() - silentSince;
    assert.ok(took >= idleTimeout * 0.7 && took < idleTimeout + closeTimeout + 10_000, `closed after ${took} ms`);
    assert.ok(await waitFor(() => upstream.sockets.size === 0, 5_000), 'the upstream connection is closed too');
    assert.ok(logger.lines.some((line) => line.message === 'websocket session closed: idle timeout'));
    client.terminate();
    await gateway.close();
    await upstream.close();
  });
}

test.run();
