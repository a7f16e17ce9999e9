// Issue 13 item 14 (handshake side): an upstream that answers a WebSocket handshake with `101`
// but no (or a wrong) `Upgrade` is an upstream fault: 502 and a log line that says so, never a
// 500 blamed on a stage.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { refusedHandshake, startGateway, startRawUpstream } from './helpers.js';


const cases: Array<[string, string]> = [
  ['no Upgrade header', 'HTTP/1.1 101 Switching Protocols\r\n\r\n'],
  ['no Upgrade header, Connection: upgrade', 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n'],
  ['Upgrade: h2c', 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'],
];

/** Both session modes: transparent (the default) and terminating (a pass-through message hook). */
const modes = [
  ['transparent', {}],
  ['terminating', { onClientMessage: () => undefined }],
] as const;

for (const [mode, policy] of modes) {
  for (const [name, answer] of cases) {
    test(`${mode}: an upstream 101 with ${name}: 502, an upstream-protocol log line, the upstream connection closed`, async () => {
      const upstream = await startRawUpstream((socket) => socket.write(answer));
      const logger = memoryLogger();
      const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(policy), logger });
      const refusal = await refusedHandshake(`${gateway.url}/chat?token=secret`);
      assert.is(refusal.status, 502);
      assert.not.match(refusal.body, /127\.0\.0\.1|secret/, 'no address or query in the body');
      assert.ok(
        await waitFor(() => logger.lines.some((line) => line.fields.code === 'ERR_UPSTREAM_PROTOCOL'), 5_000),
        `logged as an upstream protocol error: ${JSON.stringify(logger.lines.map((line) => line.message))}`,
      );
      assert.not.ok(logger.lines.some((line) => /stage returned 101/.test(line.message)), 'not blamed on a stage');
      assert.ok(await waitFor(() => upstream.sockets.size === 0, 5_000), 'the upstream connection is closed');
      await gateway.close();
      await upstream.close();
    });
  }
}

test.run();
