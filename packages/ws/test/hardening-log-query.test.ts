import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { memoryLogger, waitFor } from '@relay/testkit';
import { websocket } from '../src/index.js';
import { closed, nextPeer, noSocketsLeft, openClient, startGateway, startWsUpstream } from './helpers.js';

// Issue 13, item 10: a browser WebSocket carries its token in the query; session log lines must not.

for (const logQuery of [false, true]) {
  test(`a session log line ${logQuery ? 'carries the query with logQuery: true' : 'shows the path only by default'}`, async () => {
    const upstream = await startWsUpstream({});
    const logger = memoryLogger();
    const gateway = await startGateway({ targetBaseUrl: upstream.url, websocket: websocket(), logger, ...(logQuery ? { logQuery } : {}) });
    const peerReady = nextPeer(upstream);
    const client = await openClient(`${gateway.url}/chat?token=SECRET-TOKEN-1`);
    const peer = await peerReady;
    const clientEnd = closed(client);
    peer.close(4000, 'bye');
    await clientEnd;
    assert.ok(await waitFor(() => logger.lines.some((line) => line.message.startsWith('websocket session'))));
    const line = logger.lines.find((one) => one.message.startsWith('websocket session'))!;
    assert.is(line.fields.path, logQuery ? '/chat?token=SECRET-TOKEN-1' : '/chat');
    if (!logQuery) assert.not.ok(JSON.stringify(logger.lines).includes('SECRET-TOKEN-1'), 'no line carries the token');
    assert.ok(await noSocketsLeft(gateway, upstream));
    await gateway.close();
    await upstream.close();
  });
}

test.run();
