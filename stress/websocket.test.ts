import { test } from 'uvu';
import { websocketFaults } from './websocket.js';

test('fast subset: 100 WebSocket sessions talking while 10% of upstream sockets are killed: every client told, none hung', async () => {
  await websocketFaults(100);
});

test.run();
